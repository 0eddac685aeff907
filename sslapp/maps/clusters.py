"""Clusters of the embedding: k-means with k read off the kNN graph's spectrum (or given), or HDBSCAN.

k (when not given) is the eigengap of the normalised Laplacian of the kNN graph of the PCA-reduced,
L2-normalised features, from 3 groups up: it is the number of weakly joined groups the encoder sees.
The k-means itself runs on the 2-D map when there is one, so clusters are the regions a person sees.
Measured against the known classes (benchmarks/bench_clusters.py, docs/benchmarks.md), this beat
silhouette, which picked 2 clusters for cifar10's 10 classes (NMI 0.28 against 0.41) and 12 on
mnist (NMI 0.53 against 0.74). HDBSCAN runs on the 2-D map, where UMAP has already made density
meaningful and it stays fast for 100k points. Cluster ids are 0..k-1; HDBSCAN marks noise as -1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sslapp.vectors import l2_normalize

K_RANGE = (2, 12)
SILHOUETTE_SAMPLE = 1500
EIGENGAP_SAMPLE = 3000  # the spectrum of a 3,000-image sample gives k for any N in well under a second
EIGENGAP_NEIGHBOURS = 15
# up to 60: intents and topics come in dozens (banking77's 77 intents: k 20 -> 41-49, NMI 0.66-0.69 ->
# 0.74-0.79 with 30 -> 60), and the image sets' largest gap stays where it was (8, 9 and 5)
EIGENGAP_K = (3, 60)
MINIBATCH_ABOVE = 20_000


@dataclass
class Clustering:
    labels: np.ndarray  # (N,) int32, -1 = noise (HDBSCAN only)
    k: int
    method: str
    scores: dict[int, float] = field(default_factory=dict)  # how well each tried k fits (eigengap or silhouette)


def _reduce(features: np.ndarray, dim: int = 32, seed: int = 0) -> np.ndarray:
    from sklearn.decomposition import PCA

    from sslapp.estimators.neighbours import PCA_FIT_ROWS, sampled_pca

    if len(features) > PCA_FIT_ROWS and features.shape[1] > dim:  # no full-size copies of a large matrix
        return sampled_pca(features, dim, seed)
    x = np.nan_to_num(np.asarray(features, np.float32))
    x = l2_normalize(x, dtype=np.float32)
    k = min(dim, x.shape[0], x.shape[1])
    if x.shape[1] > dim and x.shape[0] > dim:
        x = PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)
    return x


def _kmeans(k: int, n: int, seed: int):
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if n > MINIBATCH_ABOVE:
        return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    return KMeans(n_clusters=k, random_state=seed, n_init=3)


def choose_k(x: np.ndarray, k_range: tuple[int, int] = K_RANGE, seed: int = 0) -> tuple[int, dict[int, float]]:
    """The k with the best silhouette on a sample (cheap: a few small fits)."""
    from sklearn.metrics import silhouette_score

    n = x.shape[0]
    rng = np.random.default_rng(seed)
    sample = x[rng.choice(n, size=min(n, SILHOUETTE_SAMPLE), replace=False)]
    lo, hi = k_range[0], min(k_range[1], sample.shape[0] - 1)
    scores: dict[int, float] = {}
    for k in range(lo, hi + 1):
        labels = _kmeans(k, len(sample), seed).fit_predict(sample)
        if len(set(labels.tolist())) < 2:
            continue
        scores[k] = float(silhouette_score(sample, labels))
    if not scores:
        return 1, scores
    return max(scores, key=scores.get), scores


def eigengap_k(x: np.ndarray, k_range: tuple[int, int] = EIGENGAP_K, seed: int = 0) -> tuple[int, dict[int, float]]:
    """k where the normalised Laplacian of the (symmetric) kNN graph has its largest eigengap,
    on a sample of at most EIGENGAP_SAMPLE points; (k, {k: gap after the k-th eigenvalue})."""
    from scipy.sparse.csgraph import laplacian
    from scipy.sparse.linalg import eigsh
    from sklearn.neighbors import kneighbors_graph

    n = x.shape[0]
    if n > EIGENGAP_SAMPLE:
        x = x[np.sort(np.random.default_rng(seed).choice(n, EIGENGAP_SAMPLE, replace=False))]
    lo, hi = k_range[0], min(k_range[1], x.shape[0] // 3)
    if hi < lo:
        return choose_k(x, (2, max(2, min(K_RANGE[1], x.shape[0] - 1))), seed)
    graph = kneighbors_graph(x, min(EIGENGAP_NEIGHBOURS, x.shape[0] - 1), include_self=False)
    lap = laplacian(((graph + graph.T) > 0).astype(np.float64), normed=True)
    start = np.random.default_rng(seed).random(x.shape[0])
    vals = np.sort(eigsh(lap, k=hi + 1, sigma=-1e-3, which="LM", v0=start, return_eigenvectors=False))
    gaps = {k: float(vals[k] - vals[k - 1]) for k in range(lo, hi + 1)}
    return max(gaps, key=gaps.get), gaps


def kmeans(features: np.ndarray, k: int | None = None, seed: int = 0,
           k_range: tuple[int, int] = K_RANGE, xy: np.ndarray | None = None) -> Clustering:
    """k-means on the map `xy` when given, else on the reduced features; k=None reads k off the
    features' kNN graph (`eigengap_k`), or picks it by silhouette over `k_range` for tiny sets."""
    n = len(features)
    if n == 0:
        return Clustering(np.zeros(0, np.int32), 0, "kmeans")
    if n < 3 or (k is not None and k <= 1):
        return Clustering(np.zeros(n, np.int32), 1, "kmeans")
    x = _reduce(features, seed=seed)
    scores: dict[int, float] = {}
    if k is None:
        k, scores = eigengap_k(x, seed=seed) if n >= 3 * EIGENGAP_K[0] * 2 else choose_k(x, k_range, seed)
        if k <= 1:
            return Clustering(np.zeros(n, np.int32), 1, "kmeans", scores)
    k = int(min(k, n))
    space = x if xy is None else np.asarray(xy, np.float32)
    labels = _kmeans(k, n, seed).fit_predict(space).astype(np.int32)
    return Clustering(_by_size(labels), k, "kmeans", scores)


def hdbscan(xy: np.ndarray, min_cluster_size: int | None = None) -> Clustering:
    """HDBSCAN (sklearn) on the 2-D map; small, sparse groups become noise (-1)."""
    from sklearn.cluster import HDBSCAN

    n = len(xy)
    if n < 5:
        return Clustering(np.zeros(n, np.int32), 1 if n else 0, "hdbscan")
    size = min_cluster_size or int(np.clip(n // 50, 5, 500))
    labels = HDBSCAN(min_cluster_size=size, min_samples=min(size, 10), copy=True).fit_predict(
        np.asarray(xy, np.float64)).astype(np.int32)
    labels = _by_size(labels)
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    return Clustering(labels, k, "hdbscan")


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters largest first (stable ids for the same data), keeping -1 as noise."""
    out = np.full_like(labels, -1)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    for new, old in enumerate(ids[np.argsort(-counts, kind="stable")]):
        out[labels == old] = new
    return out


def cluster(features: np.ndarray, xy: np.ndarray, method: str = "kmeans", k: int | None = None,
            seed: int = 0) -> Clustering:
    if method == "kmeans":
        return kmeans(features, k=k, seed=seed, xy=xy)
    if method == "hdbscan":
        return hdbscan(xy)
    raise ValueError(f"unknown clustering method {method!r}; use 'kmeans' or 'hdbscan'")
