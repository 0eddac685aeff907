"""Images' near-duplicate fingerprints: two dHashes (128 bits) and an 8x8 grey thumbnail per image.

Computed with numpy from the uint8 cache: every image is already decoded, square and small there,
so the hashes and thumbnails are small matrix products per chunk, where the imagehash library would
decode and resize each original again through PIL (and add a dependency) to compute the same bits.
`sslapp.curate.duplicates` says how they decide a pair.
"""

from __future__ import annotations

import numpy as np

CHUNK = 4096
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# grey levels: two cells whose area means differ by less are equal. Equal pixels summed with different
# weights differ by float rounding, and BLAS builds round differently (numpy 2.4 set bits on a plain ramp).
TIE = 1e-3


def _box_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) area-averaging weights: output bin b is the mean of the input span it covers."""
    edges = np.linspace(0.0, src, dst + 1)
    lo = np.arange(src, dtype=np.float64)
    w = np.clip(np.minimum(lo + 1, edges[1:, None]) - np.maximum(lo, edges[:-1, None]), 0.0, None)
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


def _bits(a: np.ndarray) -> np.ndarray:
    """(N, 8, 8) booleans -> (N,) uint64."""
    return np.packbits(a.reshape(len(a), 64), axis=1).view(">u8").ravel().astype(np.uint64)


def fingerprints(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hashes (N, 2) uint64, thumbnails (N, 64) float32) of uint8 images (N, H, W, 3).

    hashes: dHash of the grey image area-resized to 8x9 (left brighter than right) and to 9x8 (top
    brighter than bottom); thumbnails: the grey image area-resized to 8x8, in grey levels.
    """
    n, h, w = images.shape[:3]
    r8, r9, c8, c9 = _box_weights(h, 8), _box_weights(h, 9), _box_weights(w, 8), _box_weights(w, 9)
    hashes = np.zeros((n, 2), np.uint64)
    thumbs = np.zeros((n, 64), np.float32)
    for start in range(0, n, CHUNK):
        grey = np.asarray(images[start:start + CHUNK], np.float32) @ LUMA  # (c, H, W)
        stop = start + len(grey)
        wide, tall = r8 @ grey @ c9.T, r9 @ grey @ c8.T  # (c, 8, 9), (c, 9, 8)
        hashes[start:stop, 0] = _bits(wide[:, :, :-1] > wide[:, :, 1:] + TIE)
        hashes[start:stop, 1] = _bits(tall[:, :-1, :] > tall[:, 1:, :] + TIE)
        thumbs[start:stop] = (r8 @ grey @ c8.T).reshape(len(grey), 64)
    return hashes, thumbs
