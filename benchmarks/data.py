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


def text_table(csv_path: str | None, default: str, n: int | None) -> tuple[list[str], np.ndarray]:
    """(texts, class index) of the first `n` rows (all when None or 0) of a table with columns text and category
    (or label): `csv_path`, else banking77's `default` file (train.csv, test.csv) in the shared datasets."""
    import csv
    import sys

    path = Path(csv_path) if csv_path else datasets_root() / "banking77" / default
    if not path.exists():
        sys.exit(f"{path} not found: give --csv FILE")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[: n or None]
    labels = [r.get("category") or r.get("label") or "" for r in rows]
    return [r["text"] for r in rows], np.unique(labels, return_inverse=True)[1]
