"""Files -> sound items: WAV, FLAC, OGG and MP3 read by soundfile (libsndfile), mixed to mono, resampled to
`frontend.RATE`, and cut into windows of `frontend.WINDOW_SECONDS` (1.024 s).

Why that length: it holds a spoken word or a call whole (fsdd's digits last 0.14-1.31 s, 99% under
1 s), and at 64 frames of 16 ms the log-mel picture is square for the image networks. A recording
up to one and a half windows long is one item; a longer one is one item per window (a last part
shorter than half a window is left out, and the report says so). Each window knows its file and its
start (`Decoded.part`, "12.288s"); its preview is the window itself as a 16-bit WAV at 16 kHz, what the
pages play.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from sslapp.modalities.audio.frontend import RATE, WINDOW_SECONDS, mono, window_rows
from sslapp.modalities.base import BadItem, Decoded

EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3"})
MAX_SECONDS = 4 * 3600  # one file longer than this is refused: split it first
MIN_SECONDS = 0.05  # shorter than one frame of speech


def wav_bytes(wave: np.ndarray, rate: int = RATE) -> bytes:
    """float32 mono in [-1, 1] -> a 16-bit PCM WAV file's bytes (what the pages play)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(wave, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _declared_wav_seconds(data: bytes) -> float | None:
    """A RIFF WAV header's data length in seconds (None when it is not a plain PCM WAV header)."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, block, rate = 12, None, None
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt " and pos + 24 <= len(data):
            rate, _, block = struct.unpack("<IIH", data[pos + 12:pos + 22])
        if chunk == b"data":
            return size / block / rate if block and rate else None
        pos += 8 + size + (size & 1)
    return None


def read_sound(data: bytes) -> tuple[np.ndarray, int, dict[str, Any]]:
    """File bytes -> (mono float32 signal, its rate, facts); raises BadItem with what was wrong."""
    import soundfile as sf

    if not data:
        raise BadItem("empty", "the file is empty (0 bytes)")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate, channels, fmt = f.samplerate, f.channels, f.format
            if f.frames > MAX_SECONDS * rate:
                raise BadItem("too-long", f"{f.frames / rate / 3600:.1f} hours long; split recordings longer "
                                          f"than {MAX_SECONDS // 3600} hours before adding them")
            signal = mono(f.read(dtype="float32", always_2d=True))
    except BadItem:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise BadItem("not-audio", f"not a sound file soundfile can read ({exc}); WAV, FLAC, OGG and MP3 "
                                   "are read") from None
    facts: dict[str, Any] = {"rate": rate, "channels": channels, "format": fmt, "seconds": len(signal) / rate}
    if len(signal) == 0:
        raise BadItem("zero-length", "the file holds no sound (0 samples)")
    if not np.isfinite(signal).all():
        raise BadItem("corrupt", "the samples hold NaN or infinite values")
    declared = _declared_wav_seconds(data)
    if declared is not None and declared - facts["seconds"] > 0.01:
        facts["truncated"] = declared
    return signal, rate, facts


def decode_items(data: bytes, size: int, options: Mapping[str, Any] | None = None) -> list[Decoded]:
    """File bytes -> one item per window (one for a recording up to 1.5 windows long); raises BadItem."""
    signal, rate, facts = read_sound(data)
    seconds = facts["seconds"]
    if seconds < MIN_SECONDS:
        raise BadItem("too-short", f"{seconds * 1000:.0f} ms of sound; a clip needs at least "
                                   f"{MIN_SECONDS * 1000:.0f} ms")
    windows = window_rows(signal, rate)
    notes = []
    if "truncated" in facts:
        notes.append(f"truncated: the header promises {facts['truncated']:.2f} s but the file ends after "
                     f"{seconds:.2f} s; the {seconds:.2f} s that are there were added (copy the file again "
                     "to get the rest)")
    if len(windows) > 1:
        kept = len(windows) * WINDOW_SECONDS
        notes.append(f"{seconds:.1f} s long: cut into {len(windows)} windows of {WINDOW_SECONDS:.3f} s, each one "
                     "item" + (f" (the last {seconds - kept:.2f} s, under half a window, left out)"
                               if seconds - kept > 0.005 else ""))
    items = []
    for k, (start, wave, row) in enumerate(windows):
        info: dict[str, Any] = {**facts, "offset": start, "ext": (options or {}).get("ext") or ".wav"}
        if k == 0 and notes:
            info["file_notes"] = notes
        pcm = np.clip(np.rint(wave * 32767.0), -32768, 32767).astype("<i2").tobytes()
        items.append(Decoded(row=row, preview=wav_bytes(wave), info=info,
                             part=f"{start:.3f}s" if len(windows) > 1 else "", key=pcm))
    return items
