"""Nearest neighbours of many vectors on two cores: a sampled PCA, then NN-descent (UMAP's own search).

Exact search compares every pair: at 100,000 x 1,280 features scikit-learn's kNN graph ran for more
than five minutes, the finetune job's whole budget. NN-descent (pynndescent, already UMAP's search and
compiled once by the worker's warm-up) on 50 PCA directions finds them in seconds; the graph methods
only need each item's close neighbours, not the exact tenth one.
"""

from __future__ import annotations

import numpy as np

from sslapp.vectors import l2_normalize

PCA_DIMS = 50
PCA_FIT_ROWS = 20_000  # the PCA is fitted on a seeded sample of this many rows


def sampled_pca(features: np.ndarray, dim: int = PCA_DIMS, seed: int = 0, chunk: int = 8192,
                fit_rows: int = PCA_FIT_ROWS) -> np.ndarray:
    """The unit-length rows projected on the top `dim` directions of a seeded sample of `fit_rows` of them,
    chunk by chunk (float32): at 100,000 x 1,280 a full PCA held several copies of the matrix (2 GB more at the
    worker's peak) for directions a sample gives as well."""
    from sklearn.decomposition import PCA

    n = len(features)
    sample = np.sort(np.random.default_rng(seed).choice(n, min(n, fit_rows), replace=False))
    k = min(dim, len(sample), features.shape[1])
    pca = PCA(n_components=k, random_state=seed).fit(_unit(features[sample]))
    return np.concatenate([pca.transform(_unit(features[i:i + chunk])) for i in range(0, n, chunk)]).astype(np.float32)


def _unit(rows: np.ndarray) -> np.ndarray:
    return l2_normalize(np.nan_to_num(np.asarray(rows, np.float32)), dtype=np.float32)


def approximate_knn(x: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) of each row's `k` nearest rows by cosine, itself first, as NN-descent finds them;
    distances are those of the unit-length rows (sqrt(2 x cosine distance)), as an exact search on
    normalised features gives."""
    import warnings

    from sslapp.numba_cache import import_umap

    import_umap()  # numba's disk cache on for UMAP's and pynndescent's code
    from umap.umap_ import nearest_neighbors

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idx, dist, _ = nearest_neighbors(np.ascontiguousarray(x, np.float32), int(k), "cosine", {}, True,
                                         np.random.RandomState(seed), low_memory=True, use_pynndescent=True,
                                         n_jobs=1, verbose=False)
    return idx.astype(np.int64), np.sqrt(2.0 * np.maximum(dist, 0.0)).astype(np.float64)
