"""Images' cheap first-look embedding: PCA of area-downsampled pixels, for a map seconds after an upload.

It exists so a user sees a map before any encoder runs. It was chosen over a random-init CNN's
pooled features because it separated the sample classes at least as well at a fraction of the cost
(see docs/benchmarks.md, "Explore: first map"). A map made from it is marked ``provisional``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sslapp.modalities.base import gather_rows

PROVISIONAL_SIDE = 16
PROVISIONAL_DIM = 32  # enough for a first look; UMAP's neighbour search stays cheap
PCA_FIT_SAMPLE = 5000
CHUNK = 2048

Progress = Callable[[int, int], None]


def downsample(batch: np.ndarray, side: int = PROVISIONAL_SIDE) -> np.ndarray:
    """uint8 (B, S, S, C) -> float32 (B, side*side*3) by area averaging (S must be >= side)."""
    b, s = batch.shape[0], batch.shape[1]
    if batch.shape[-1] == 1:
        batch = np.repeat(batch, 3, axis=-1)
    if s % side == 0:
        # integer block sums, rows first along the contiguous axis: ~5x faster than a float mean
        f = s // side
        acc = np.uint16 if f * f * 255 < 2**16 else np.uint32
        rows = np.add.reduce(np.ascontiguousarray(batch).reshape(b, side, f, s * 3), axis=2, dtype=acc)
        x = rows.reshape(b, side, side, f, 3).sum(axis=3, dtype=acc).astype(np.float32) / (f * f)
    else:  # uneven sizes: nearest sample of bin centres (rare: cache sizes are usually multiples of 16)
        idx = ((np.arange(side) + 0.5) * s / side).astype(int)
        x = batch[:, idx][:, :, idx].astype(np.float32)
    return x.reshape(b, -1) / 255.0


def provisional_features(images: np.ndarray, rows: np.ndarray | None = None, dim: int = PROVISIONAL_DIM,
                         seed: int = 0, progress: Progress | None = None) -> np.ndarray:
    """PCA of downsampled pixels: (N, dim) float32. Fitted on a sample, applied in chunks."""
    from sklearn.decomposition import PCA

    n = len(images) if rows is None else len(rows)
    if n == 0:
        return np.zeros((0, dim), np.float32)
    rng = np.random.default_rng(seed)
    fit_idx = np.sort(rng.choice(n, size=min(n, PCA_FIT_SAMPLE), replace=False))
    fit_rows = fit_idx if rows is None else rows[fit_idx]
    sample = downsample(np.asarray(images[np.sort(fit_rows)]))
    k = int(min(dim, sample.shape[0], sample.shape[1]))
    pca = PCA(n_components=k, svd_solver="randomized" if k < min(sample.shape) - 1 else "full",
              random_state=seed).fit(sample)
    out = np.zeros((n, dim), np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        out[start:stop, :k] = pca.transform(downsample(gather_rows(images, rows, start, stop)))
        if progress:
            progress(stop, n)
    return out


RAW_PCA_DIMS = 50


def raw_pixels_pca(images: np.ndarray, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """The label-efficiency benchmark's image baseline ("raw-pixels"): PCA-50 of the cached pixels in [0, 1]."""
    from sklearn.decomposition import PCA

    x = np.asarray(images[rows], np.float32).reshape(len(rows), -1) / 255.0
    k = min(RAW_PCA_DIMS, x.shape[0] - 1, x.shape[1])
    return PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)
