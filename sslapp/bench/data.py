"""Build a workspace straight from uint8 arrays, and synthetic images to fill one, for benchmarks
(`sslapp bench`, benchmarks/) and tests.

It writes the documented cache format (`sslapp.ingest.cache.CacheWriter`) and item rows, which is
what ingesting the same images as files would give at a cache size equal to the image size,
without paying for PNG encoding and decoding of thousands of files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def synthetic_images(n: int, size: int = 32, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Coloured blobs on noise: `classes` distinguishable kinds, so kNN has something to find."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    yy, xx = np.mgrid[0:size, 0:size]
    images = rng.integers(0, 60, (n, size, size, 3)).astype(np.float32)
    for i, c in enumerate(labels):
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        r = size / 5 + c * size / 20
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        colour = np.zeros(3)
        colour[c % 3] = 200
        images[i][mask] += colour
    return np.clip(images, 0, 255).astype(np.uint8), labels


def workspace_from_arrays(path: str | Path, images: np.ndarray, labels: np.ndarray | None = None,
                          class_names: list[str] | None = None, label_every: int = 1):
    """A workspace holding `images` (N, S, S, 3) as its cache; every `label_every`-th item labelled."""
    from sslapp.ingest.cache import CacheWriter
    from sslapp.workspace import open_workspace

    size = images.shape[1]
    ws = open_workspace(path, cache_size=size)
    with CacheWriter(ws) as cache:
        rows = cache.append(images)
        cache.sync()
        ids = ws.store.add_items([
            {"source": f"img{i:06d}.png", "sha256": hashlib.sha256(images[i].tobytes() + bytes(str(i), "ascii")).hexdigest(),
             "width": size, "height": size, "cache_index": r} for i, r in enumerate(rows)])
    if labels is not None:
        names = class_names or [str(c) for c in range(int(labels.max()) + 1)]
        by_class: dict[int, list[int]] = {}
        for i, (item_id, y) in enumerate(zip(ids, labels, strict=True)):
            if i % label_every == 0:
                by_class.setdefault(int(y), []).append(item_id)
        for y, items in by_class.items():
            ws.store.set_labels(items, ws.store.class_id(names[y], create=True), source="imported")
    return ws
