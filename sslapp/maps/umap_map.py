"""The 2-D map: UMAP (cosine, seeded) of the embeddings, PCA for tiny sets.

UMAP's first fit on an install spends seconds compiling numba code (kept on disk after that, see
`numba_cache`); the worker calls `warm_up()` when it starts so the first real map only pays for the fit.
"""

from __future__ import annotations

import numpy as np

from sslapp.estimators.neighbours import PCA_FIT_ROWS, approximate_knn, sampled_pca
from sslapp.vectors import l2_normalize

MIN_UMAP_ITEMS = 15
EXACT_KNN_MAX = 20_000  # up to here exact cosine neighbours (sklearn, brute force) beat NN-descent
PCA_FIRST_DIM = 50  # UMAP's neighbour search is cheaper on PCA-reduced features


def n_neighbors_for(n: int) -> int:
    """15 (UMAP's default) for normal sets, fewer for small ones, a bit more for very large ones."""
    if n <= 2:
        return 2
    if n > 50_000:
        return 30
    return int(min(15, max(2, n // 4)))


def n_epochs_for(n: int) -> int:
    """Fewer optimisation epochs as N grows: the layout converges and the fit stays interactive."""
    if n <= 2_000:
        return 200
    if n <= 20_000:
        return 120
    return 80


def _pca(features: np.ndarray, dim: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    k = min(dim, features.shape[0], features.shape[1])
    if k <= 0 or features.shape[0] < 2:  # one point: nothing to project
        return np.zeros((features.shape[0], dim), np.float32)
    out = PCA(n_components=k, random_state=seed).fit_transform(features).astype(np.float32)
    if k < dim:
        out = np.hstack([out, np.zeros((out.shape[0], dim - k), np.float32)])
    return out


def fit_map(features: np.ndarray, seed: int = 0, n_neighbors: int | None = None,
            n_epochs: int | None = None) -> tuple[np.ndarray, str]:
    """(N, D) features -> ((N, 2) float32 map, method) with method 'umap' or 'pca'."""
    features = np.asarray(features, np.float32)
    n = features.shape[0]
    if n == 0:
        return np.zeros((0, 2), np.float32), "pca"
    if not all(np.isfinite(features[i:i + 8192]).all() for i in range(0, n, 8192)):  # a copy only when needed
        features = np.nan_to_num(features)
    if n < MIN_UMAP_ITEMS:
        return _pca(features - features.mean(axis=0), 2, seed), "pca"
    x = features
    if x.shape[1] > PCA_FIRST_DIM and n > PCA_FIT_ROWS:
        x = sampled_pca(x, PCA_FIRST_DIM, seed)
    elif x.shape[1] > PCA_FIRST_DIM and n > PCA_FIRST_DIM:
        x = _pca(l2_normalize(x, dtype=np.float32), PCA_FIRST_DIM, seed)  # fewer dims: a faster neighbour search, same neighbours
    import warnings

    from sslapp.numba_cache import import_umap

    umap = import_umap()
    k = n_neighbors or n_neighbors_for(n)
    knn = exact_knn(x, k) if n <= EXACT_KNN_MAX else (None, None, None)
    reducer = umap.UMAP(n_components=2, metric="cosine", n_neighbors=k, n_epochs=n_epochs or n_epochs_for(n),
                        min_dist=0.1, random_state=seed, n_jobs=1, init="spectral" if n <= 20_000 else "pca",
                        low_memory=True, precomputed_knn=knn, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seeded runs are single-threaded by design; no search index kept
        xy = reducer.fit_transform(x).astype(np.float32)
    if not np.isfinite(xy).all():
        xy = np.nan_to_num(xy)
    return xy, "umap"


def exact_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, None]:
    """Exact cosine k nearest neighbours (self first), in UMAP's precomputed_knn format.

    For N <= EXACT_KNN_MAX this is faster than NN-descent on a CPU and, above all, skips
    compiling pynndescent: a warm worker only needs UMAP's own layout code compiled.
    """
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute", n_jobs=1).fit(x)
    dists, idx = nn.kneighbors(x)
    return idx.astype(np.int32), np.maximum(dists, 0).astype(np.float32), None


def warm_up() -> None:
    """A tiny fit with the same settings as `fit_map`, so numba compiles before the first real map."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8)).astype(np.float32)
    x[:60] += 4.0
    fit_map(x, n_epochs=20)


def warm_up_large_sets() -> None:
    """Compile NN-descent, the neighbour search of maps, graphs and near-duplicates above 20,000 items.
    With numba's disk cache on for pynndescent (`sslapp.numba_cache`) a new process still compiles its core,
    which takes the distance function as an argument and so cannot be kept on disk: 10 s of CPU on 2 cores
    (23 s without that cache, 39 s inside the first 100,000-image map before this warm-up), so the worker
    does it while idle."""
    approximate_knn(np.random.default_rng(0).normal(size=(600, PCA_FIRST_DIM)).astype(np.float32),
                    n_neighbors_for(EXACT_KNN_MAX + 1))
