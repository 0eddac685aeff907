"""The workspace modality's cheap per-item arrays, for consumers that must not ask what an item is:
the quick first-look embedding (a map in seconds), the fingerprints that confirm near-duplicates and
the words that name a map's clusters (texts)."""

from __future__ import annotations

import numpy as np

from sslapp.ingest.cache import read_cache
from sslapp.modalities import workspace_modality
from sslapp.workspace import Workspace

QUICK_DIM = 32  # enough for a first look; UMAP's neighbour search stays cheap


def quick_features(ws: Workspace, cache_rows: np.ndarray, dim: int = QUICK_DIM, seed: int = 0) -> np.ndarray:
    """(N, dim) float32 of the cache rows, from the modality's cheap embedding (images: pixel PCA)."""
    return workspace_modality(ws).quick_features(read_cache(ws), cache_rows, dim, seed)


def fingerprints(ws: Workspace, cache_rows: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(hashes (N, 2) uint64, profiles (N, 64) float32) of the cache rows, read a chunk at a time."""
    cache, make = read_cache(ws), workspace_modality(ws).fingerprints
    prints = [make(np.asarray(cache[cache_rows[s:s + chunk]])) for s in range(0, len(cache_rows), chunk)]
    hashes = np.concatenate([p[0] for p in prints]) if prints else np.zeros((0, 2), np.uint64)
    profiles = np.concatenate([p[1] for p in prints]) if prints else np.zeros((0, 64), np.float32)
    return hashes, profiles


def cluster_words(ws: Workspace, item_ids: np.ndarray, clusters: np.ndarray, top: int = 3) -> dict[int, list[str]]:
    """{cluster: its `top` most distinctive words} for items with these map clusters; {} when the
    workspace's kind of item has no words (images)."""
    words = workspace_modality(ws).cluster_words
    if words is None or len(item_ids) == 0:
        return {}
    row_of = dict(ws.store.item_ids_and_cache_index())  # active items only
    known = np.array([int(i) in row_of for i in item_ids], bool)
    rows = np.array([row_of[int(i)] for i in np.asarray(item_ids)[known]], np.int64)
    return words(read_cache(ws), rows, np.asarray(clusters)[known], top)
