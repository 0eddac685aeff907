"""Feature arrays: an encoder run over cache rows, and the cheap provisional pixel embedding.

Which encoder, and caching its features, is `sslapp.features.service`'s job.

The provisional embedding (PCA of 16x16 area-downsampled pixels) exists so a user sees a map
seconds after an upload, before any pretraining. It was chosen over a random-init CNN's pooled
features because it separated the sample classes at least as well at a fraction of the cost
(see docs/benchmarks.md, "Explore: first map"). It is always marked ``provisional``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sslapp.modalities.image import IMAGE

PROVISIONAL_SIDE = 16
PROVISIONAL_DIM = 32  # enough for a first look; UMAP's neighbour search stays cheap
PCA_FIT_SAMPLE = 5000
CHUNK = 2048

Progress = Callable[[int, int], None]


def _rows(images: np.ndarray, rows: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    """A chunk of images, gathered from a memmap without reading the rest of it."""
    if rows is None:
        return np.asarray(images[start:stop])
    return np.asarray(images[np.sort(rows[start:stop])])[np.argsort(np.argsort(rows[start:stop]))]


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
        out[start:stop, :k] = pca.transform(downsample(_rows(images, rows, start, stop)))
        if progress:
            progress(stop, n)
    return out


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def encoder_features(model, items: np.ndarray, rows: np.ndarray | None = None, batch_size: int = 256,
                     device: str | None = None, progress: Progress | None = None,
                     check_stop: Callable[[], None] | None = None,
                     to_input: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Run `model` over the cache rows `items[rows]`, batched, without grad: (N, D) float32.

    `to_input` turns a batch of cache rows into the model's input (the workspace modality's
    `model_input`; default: images, uint8 (B, S, S, 3) -> float (B, 3, S, S) in [0, 1])."""
    import torch

    to_input = to_input or IMAGE.model_input
    device = device or default_device()
    model = model.to(device).eval()
    n = len(items) if rows is None else len(rows)
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            if check_stop:
                check_stop()
            stop = min(n, start + batch_size)
            x = torch.from_numpy(to_input(_rows(items, rows, start, stop))).to(device)
            feats = model(x).float().cpu().numpy()
            if out is None:
                out = np.zeros((n, feats.shape[1]), np.float32)
            out[start:stop] = feats
            if progress:
                progress(stop, n)
    return out if out is not None else np.zeros((0, getattr(model, "dim", 0)), np.float32)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz atomically (temp file, then rename), never pickling objects."""
    from sslapp.atomic import write_bytes_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
