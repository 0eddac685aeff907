"""Datasets for the benchmarks: cifar10, mnist or pneumoniamnist arrays from the shared folder.

Workspaces are built from such arrays (or synthetic images) by `sslapp.bench.data`.
`SSLAPP_DATASETS` names another folder of the same layout: the smoke tests
(tests/test_benchmarks_smoke.py) point it at a few tiny arrays, so every script runs without the
shared data.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASETS_ENV = "SSLAPP_DATASETS"


def datasets_root() -> Path:
    """$SSLAPP_DATASETS if set, else ../shared/datasets beside the repo, else /work/shared/datasets."""
    if os.environ.get(DATASETS_ENV):
        return Path(os.environ[DATASETS_ENV])
    for root in (SHARED, Path("/work/shared/datasets")):
        if root.exists():
            return root
    return SHARED


def load_dataset(name: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(images uint8 NxHxWx3, labels, class names) from `datasets_root()`, or None if absent."""
    d = datasets_root() / name
    if not (d / "images.npy").exists():
        return None
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
