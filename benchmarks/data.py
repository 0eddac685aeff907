"""Datasets for the benchmarks: cifar10 or mnist arrays from the shared folder.

Workspaces are built from such arrays (or synthetic images) by `sslapp.bench.data`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def load_dataset(name: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(images uint8 NxHxWx3, labels, class names) from /work/shared/datasets, or None if absent."""
    for root in (SHARED, Path("/work/shared/datasets")):
        d = root / name
        if (d / "images.npy").exists():
            images = np.load(d / "images.npy")
            labels = np.load(d / "labels.npy")
            classes = (d / "classes.txt").read_text().split()
            if images.ndim == 3:
                images = images[..., None]
            if images.shape[-1] == 1:
                images = np.repeat(images, 3, axis=-1)
            if limit:
                images, labels = images[:limit], labels[:limit]
            return np.ascontiguousarray(images), labels, classes
    return None
