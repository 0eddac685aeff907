"""A small labelled pile of real WAV files for the sound tests, made with numpy (tests must not need
../shared): three kinds of call, each at several pitches and lengths, with a little noise, 8 kHz or
16 kHz, so the MFCC statistics and every encoder can tell them apart.

- "whistle": a steady tone with vibrato;
- "chirp": a tone sweeping up an octave;
- "knock": a few short noise bursts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

KINDS = ("whistle", "chirp", "knock")


def clip(kind: str, k: int, rate: int = 16000) -> np.ndarray:
    """The k-th clip of `kind`: float32 mono in [-1, 1], 0.4-0.9 s long, reproducible."""
    rng = np.random.default_rng(KINDS.index(kind) * 1000 + k)
    seconds = 0.4 + 0.5 * rng.random()
    t = np.arange(int(seconds * rate)) / rate
    base = 300.0 * 2 ** (rng.random() * 2)  # 300-1200 Hz
    if kind == "whistle":
        wave = np.sin(2 * np.pi * base * t + 3 * np.sin(2 * np.pi * 6 * t))
    elif kind == "chirp":
        wave = np.sin(2 * np.pi * base * seconds / np.log(2) * (2 ** (t / seconds) - 1))
    else:
        wave = np.zeros_like(t)
        for start in rng.uniform(0, seconds - 0.08, 3):
            lo = int(start * rate)
            wave[lo:lo + int(0.05 * rate)] += rng.standard_normal(int(0.05 * rate)) * np.hanning(int(0.05 * rate))
    envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    wave = 0.5 * wave * envelope + 0.003 * rng.standard_normal(len(t))
    return np.clip(wave, -1, 1).astype(np.float32)


def write_clips(folder: Path, per_kind: int = 8, subfolders: bool = True, rate: int = 16000) -> list[Path]:
    """`per_kind` WAV clips of each kind under `folder` (in a folder named by their kind when `subfolders`,
    for --labels-from-dirs); odd clips at 8 kHz when `rate` is 16000, to exercise resampling."""
    import soundfile as sf

    paths = []
    for kind in KINDS:
        out = folder / kind if subfolders else folder
        out.mkdir(parents=True, exist_ok=True)
        for k in range(per_kind):
            r = 8000 if rate == 16000 and k % 2 else rate
            path = out / f"{kind}_{k}.wav"
            sf.write(path, clip(kind, k, r), r, subtype="PCM_16")
            paths.append(path)
    return paths
