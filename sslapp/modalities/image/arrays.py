"""The one uint8 -> model-input conversion, in numpy (no torch, so `sslapp predict` can use it).

Decoded images and cache rows are uint8 (S, S, 3); every model sslapp trains or exports takes
float32 (B, 3, S, S) in [0, 1], RGB. Writing this conversion once keeps the scale and layout
the same everywhere, and `SCALE`/`LAYOUT` let the export manifest state it from here.
"""

from __future__ import annotations

import numpy as np

SCALE = 1 / 255  # uint8 -> [0, 1]
LAYOUT = "NCHW"
CHANNELS = "RGB"


def to_nchw_float(batch: np.ndarray) -> np.ndarray:
    """uint8 (B, S, S, 3), (B, S, S, 1) or (B, S, S) -> contiguous float32 (B, 3, S, S) in [0, 1].

    Grayscale batches are repeated to three channels. Any other dtype or shape is refused rather
    than guessed at: a float batch might already be scaled, and scaling twice is silent.
    """
    arr = np.asarray(batch)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image batch, got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"expected uint8 (B, S, S, 3), (B, S, S, 1) or (B, S, S), got {arr.shape}")
    out = arr.transpose(0, 3, 1, 2).astype(np.float32, order="C")
    out /= np.float32(255.0)
    if out.shape[1] == 1:
        out = np.repeat(out, 3, axis=1)
    return out


def describe(size: int) -> str:
    """`to_nchw_float` as one step a person can follow (for model.json and the model card)."""
    return (f"Divide by 255 to float32 in [0, 1]; layout {LAYOUT} (batch, 3, {size}, {size}), "
            f"channels {CHANNELS}.")
