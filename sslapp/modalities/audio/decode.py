"""Files -> sound items: WAV, FLAC, OGG and MP3 read by soundfile (libsndfile), mixed to mono, resampled to
`frontend.RATE`, and cut into windows of `frontend.WINDOW_SECONDS` (1.024 s).

Why that length: it holds a spoken word or a call whole (fsdd's digits last 0.14-1.31 s, 99% under
1 s), and at 64 frames of 16 ms the log-mel picture is square for the image networks. A recording
shorter than one and a half windows is one item; a longer one is one item per window (a last part
shorter than half a window is left out, and the report says so). Each window knows its file and its
start (`Decoded.part`, "12.288s"); its preview is the window itself as a 16-bit WAV at 16 kHz, what the
pages play.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from sslapp.modalities.audio.frontend import RATE, WINDOW_SECONDS, mono, window_row, window_samples
from sslapp.modalities.base import BadItem, Decoded

EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3"})
MAX_SECONDS = 3600  # one file longer is refused (split it first): its bytes are held whole while it is read
BLOCK = 1 << 16  # samples read at a time
MIN_SECONDS = 0.05  # shorter than one frame of speech


def wav_bytes(pcm: np.ndarray, rate: int = RATE) -> bytes:
    """int16 mono samples -> a 16-bit PCM WAV file's bytes (what the pages play)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, pcm, rate, format="WAV", subtype="PCM_16")
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
        if chunk == b"data":  # 0 or 0xFFFFFFFF: a streamed file that never said its length
            return size / block / rate if block and rate and 0 < size < 0xFFFFFFFF else None
        pos += 8 + size + (size & 1)
    return None


def _windows(f, rate: int, seen: list[int]) -> Iterator[tuple[float, np.ndarray]]:
    """(start in seconds, mono samples at `rate`) of each window of an open SoundFile, read a block at a
    time (a long recording is never held whole), by the rule of `frontend.window_starts`; `seen[0]` counts
    the samples read, which decide the windows and the recording's length alike."""
    buf, buf_start, done, k = np.zeros(0, np.float32), 0, False, 0

    def read(count: int) -> np.ndarray:
        nonlocal done
        block = mono(f.read(count, dtype="float32", always_2d=True))
        done, seen[0] = len(block) == 0, seen[0] + len(block)
        return block

    while True:
        start = k * WINDOW_SECONDS
        lo, hi = window_samples(start, rate)
        while not done and buf_start + len(buf) < hi:
            buf = np.concatenate([buf, read(max(hi - lo, BLOCK))])
        total = buf_start + len(buf)
        if total == 0 or (k > 0 and total / rate - start < WINDOW_SECONDS / 2):
            return
        yield start, buf[lo - buf_start:hi - buf_start]
        next_lo = window_samples((k + 1) * WINDOW_SECONDS, rate)[0]
        while not done and buf_start + len(buf) < next_lo:  # a gap between windows: read past it
            buf = np.concatenate([buf, read(next_lo - buf_start - len(buf))])
        buf, buf_start, k = buf[max(0, next_lo - buf_start):], next_lo, k + 1


def decode_items(data: bytes, size: int, options: Mapping[str, Any] | None = None) -> list[Decoded]:
    """File bytes -> one item per window (one for a recording shorter than 1.5 windows); raises BadItem
    with what was wrong for a file that is not audio, empty, of zero length, too short or too long.
    options: "ext" (the file's suffix), "previews" (False: no WAV preview per window)."""
    import soundfile as sf

    if not data:
        raise BadItem("empty", "the file is empty (0 bytes)")
    ext = (options or {}).get("ext") or ".wav"
    previews = (options or {}).get("previews", True)  # `sslapp predict` plays nothing: no WAV per window
    items: list[Decoded] = []
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate, facts = f.samplerate, {"rate": f.samplerate, "channels": f.channels, "format": f.format}
            if f.frames > MAX_SECONDS * rate:
                raise BadItem("too-long", f"{f.frames / rate / 3600:.1f} hours long; split recordings longer "
                                          f"than {MAX_SECONDS // 3600} hour into parts before adding them")
            seen = [0]
            for start, chunk in _windows(f, rate, seen):
                if not np.isfinite(chunk).all():
                    raise BadItem("corrupt", f"the samples at {start:.1f} s hold NaN or infinite values")
                wave, row = window_row(chunk, rate)
                pcm = np.clip(np.rint(wave * 32767.0), -32768, 32767).astype("<i2")
                items.append(Decoded(row=row, preview=wav_bytes(pcm) if previews else None, part=f"{start:.3f}s",
                                     key=pcm.tobytes(),
                                     info={**facts, "offset": start, "ext": ext}))
    except BadItem:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = str(exc).rsplit(": ", 1)[-1].rstrip(".")  # "Error opening <_io.BytesIO ...>: Format not recognised."
        if items:  # it opened and gave sound, then failed
            raise BadItem("corrupt", f"the sound breaks off after {len(items) * WINDOW_SECONDS:.1f} s ({reason}); "
                                     "copy or export the file again") from None
        raise BadItem("not-audio", f"not a sound file soundfile can read ({reason}); WAV, FLAC, OGG and MP3 "
                                   "are read") from None
    if not items:
        raise BadItem("zero-length", "the file holds no sound (0 samples)")
    seconds = seen[0] / rate  # the samples there were (a truncated file holds fewer than its header says)
    if seconds < MIN_SECONDS:
        raise BadItem("too-short", f"{seconds * 1000:.0f} ms of sound; a clip needs at least "
                                   f"{MIN_SECONDS * 1000:.0f} ms")
    notes = []
    declared = _declared_wav_seconds(data)
    if declared is not None and declared - seconds > 0.01:
        notes.append(f"truncated: the header promises {declared:.2f} s but the file ends after {seconds:.2f} s; "
                     f"the {seconds:.2f} s that are there were added (copy the file again to get the rest)")
    if len(items) > 1:
        kept = len(items) * WINDOW_SECONDS
        notes.append(f"{seconds:.1f} s long: cut into {len(items)} windows of {WINDOW_SECONDS:.3f} s, each one "
                     "item" + (f" (the last {seconds - kept:.2f} s, under half a window, left out)"
                               if seconds - kept > 0.005 else ""))
    else:
        items[0].part = ""  # one window: the item is the file
    for d in items:
        d.info["seconds"] = seconds
    if notes:
        items[0].info["file_notes"] = notes
    return items
