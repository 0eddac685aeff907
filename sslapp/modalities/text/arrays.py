"""How a text lives in the cache: its UTF-8 bytes in a fixed-width uint8 row, zero-padded, cut at a
character boundary when longer (the original keeps it whole). Encoders read rows back with `texts_of`."""

from __future__ import annotations

import re

import numpy as np

TEXT_BYTES = 4096  # per cached text: far more than MiniLM's 256 word pieces read (about 1,000-1,500 characters)
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Whitespace runs become one space, ends stripped, NULs dropped: what makes two texts the same."""
    return _SPACE.sub(" ", text.replace("\x00", " ")).strip()


def encode_text(text: str, width: int = TEXT_BYTES) -> tuple[np.ndarray, bool]:
    """(the (width,) uint8 row of `text`, whether it was cut): UTF-8, cut at a character boundary."""
    data = text.encode("utf-8")
    cut = len(data) > width
    if cut:
        data = data[:width].decode("utf-8", errors="ignore").encode("utf-8")
    row = np.zeros(width, np.uint8)
    row[:len(data)] = np.frombuffer(data, np.uint8)
    return row, cut


def texts_of(rows: np.ndarray) -> list[str]:
    """Cache rows (B, width) uint8 -> their texts."""
    rows = np.asarray(rows, np.uint8)
    return [bytes(r).rstrip(b"\x00").decode("utf-8", errors="replace") for r in rows]
