"""Sound -> the log-mel picture every audio encoder reads, in numpy only.

One window of sound is WINDOW samples at RATE Hz, mono (a shorter recording is zero-padded at the
end). Its log-mel spectrogram has MELS mel bands by FRAMES frames; in dB, clipped to [DB_FLOOR,
DB_CEIL] and scaled to 0-255, it is one uint8 cache row, row[band, frame], the lowest band first.

This file is the whole front end: ingestion, `sslapp predict` and the exported `predict_onnx.py` (which
gets its source copied in by `sslapp.export.snippets`) run these same functions, so an exported model
sees exactly the rows the app trained on. Resampling is by FFT (zero-padding or cutting the spectrum:
an ideal low-pass), one window at a time, so it needs nothing beyond numpy.
"""

from __future__ import annotations

import numpy as np

RATE = 16000  # Hz: every recording is resampled to this (speech and most field recordings fit below 8 kHz)
N_FFT = 512  # 32 ms frames
HOP = 256  # 16 ms between frames
FRAMES = 64  # frames per window: a window is FRAMES * HOP samples
WINDOW = FRAMES * HOP  # 16,384 samples = 1.024 s
WINDOW_SECONDS = WINDOW / RATE
MELS = 64
F_MIN, F_MAX = 50.0, 8000.0  # Hz covered by the mel bands
DB_FLOOR, DB_CEIL = -100.0, 20.0  # dB range kept; a full-scale sine is about -6 dB


def resample(signal: np.ndarray, rate: int, length: int | None = None) -> np.ndarray:
    """float32 mono `signal` at `rate` Hz -> RATE Hz, by FFT; `length` samples out (default: in proportion)."""
    signal = np.asarray(signal, np.float64)
    n = len(signal)
    m = int(round(n * RATE / rate)) if length is None else int(length)
    if rate == RATE and m == n:
        return signal.astype(np.float32)
    if n == 0 or m == 0:
        return np.zeros(m, np.float32)
    spectrum = np.fft.rfft(signal)
    keep = min(len(spectrum), m // 2 + 1)
    out = np.zeros(m // 2 + 1, np.complex128)
    out[:keep] = spectrum[:keep]
    if keep == m // 2 + 1 and m % 2 == 0 and keep < len(spectrum):
        out[-1] = out[-1].real  # the new Nyquist bin of a cut spectrum must be real
    return (np.fft.irfft(out, n=m) * (m / n)).astype(np.float32)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    hz = np.asarray(hz, np.float64)
    linear = hz / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


def mel_filters() -> np.ndarray:
    """(MELS, N_FFT // 2 + 1) triangular filters, peak 1, edges evenly spaced on the mel scale."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), MELS + 2))
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / RATE)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


_FILTERS = mel_filters()
_HANN = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann
_SCALE = 2.0 / _HANN.sum()  # a full-scale sine's bin reads amplitude 1


def log_mel(window: np.ndarray) -> np.ndarray:
    """One window (WINDOW float32 samples at RATE, shorter ones zero-padded) -> (MELS, FRAMES) dB."""
    x = np.zeros(WINDOW + N_FFT - HOP, np.float32)
    w = np.asarray(window, np.float32)[:WINDOW]
    x[:len(w)] = w
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP][:FRAMES]
    power = np.abs(np.fft.rfft(frames * _HANN, axis=1) * _SCALE) ** 2 / 2  # (FRAMES, bins): mean power
    mel = power.astype(np.float32) @ _FILTERS.T
    return (10.0 * np.log10(np.maximum(mel, 1e-12))).T.astype(np.float32)


def to_row(db: np.ndarray) -> np.ndarray:
    """(MELS, FRAMES) dB -> the uint8 cache row: [DB_FLOOR, DB_CEIL] scaled to 0-255, rounded."""
    scaled = (np.clip(db, DB_FLOOR, DB_CEIL) - DB_FLOOR) * (255.0 / (DB_CEIL - DB_FLOOR))
    return np.rint(scaled).astype(np.uint8)


def row_db(rows: np.ndarray) -> np.ndarray:
    """uint8 cache rows (..., MELS, FRAMES) -> dB (float32), the inverse of `to_row` up to its rounding."""
    return np.asarray(rows, np.float32) * ((DB_CEIL - DB_FLOOR) / 255.0) + DB_FLOOR


def mono(data: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,) float32: the mean of the channels."""
    data = np.asarray(data, np.float32)
    return data.mean(axis=1) if data.ndim == 2 else data


def window_starts(seconds: float) -> list[float]:
    """Where the windows of a recording `seconds` long start: one every WINDOW_SECONDS; the first always,
    a later one only when at least half a window of sound is left for it."""
    count = 1
    while seconds - count * WINDOW_SECONDS >= WINDOW_SECONDS / 2:
        count += 1
    return [k * WINDOW_SECONDS for k in range(count)]


def window_samples(start: float, rate: int) -> tuple[int, int]:
    """The samples [lo, hi) at `rate` of the window that starts at `start` seconds."""
    lo = int(round(start * rate))
    return lo, lo + int(round(WINDOW_SECONDS * rate))


def window_row(chunk: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """One window's mono samples at `rate` -> (the window at RATE, float32; its uint8 row)."""
    wave = resample(chunk, rate, min(WINDOW, int(round(len(chunk) * RATE / rate))))
    return wave, to_row(log_mel(wave))


def window_rows(signal: np.ndarray, rate: int) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """A whole mono recording at `rate` -> [(start in seconds, the window at RATE (float32), its uint8 row)]."""
    out = []
    for start in window_starts(len(signal) / rate):
        lo, hi = window_samples(start, rate)
        out.append((start, *window_row(signal[lo:hi], rate)))
    return out
