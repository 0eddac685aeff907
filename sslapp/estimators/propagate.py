"""Use the unlabelled pool: Poisson learning or label spreading over the kNN graph, or self-training.

Each returns pseudo-labels (index, class, confidence) for unlabelled rows: the graph methods their most
confident share per predicted class, self-training its most confident per class, round by round. The final
classifier is then trained on the real labels plus these pseudo-labels, so
what the app shows and what it exports are one and the same model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.semi_supervised import LabelSpreading

from sslapp.estimators.linear import LinearProbe
from sslapp.vectors import l2_normalize

METHODS = ("spreading", "poisson", "self-training")
# Poisson pseudo-labels for the whole pool: better than the most confident half in 18 of 24 settings
# measured on mnist, cifar10 and pneumoniamnist at 1-10 labels per class (docs/benchmarks.md).
POISSON_KEEP = 1.0
# ... but at most this many, so the probe trained on them stays seconds at 100k images.
MAX_PSEUDO = 5000


@dataclass
class PseudoLabels:
    index: np.ndarray  # rows of the feature matrix
    labels: np.ndarray  # class index per row
    confidence: np.ndarray  # in [0, 1]
    method: str

    def __len__(self) -> int:
        return len(self.index)


def _unlabelled_mask(n: int, labeled_idx: np.ndarray) -> np.ndarray:
    mask = np.ones(n, dtype=bool)
    mask[labeled_idx] = False
    return mask


N_NEIGHBORS = 10


@dataclass
class KnnGraph:
    """One kNN search of the L2-normalised features, shared by every propagation of a job (cross-
    validation propagates once per fold over the same images): label spreading uses its 0/1
    connectivity (self included, as sklearn's "knn" kernel builds it), Poisson learning its
    symmetric Gaussian weights (better than 0/1 by 0.01-0.06 at 1-3 labels per class)."""

    indices: np.ndarray
    distances: np.ndarray
    features: np.ndarray
    _connectivity: object = None
    _weights: object = None

    @property
    def connectivity(self):
        if self._connectivity is None:
            from scipy import sparse

            n, k = self.indices.shape
            self._connectivity = sparse.csr_matrix(
                (np.ones(n * k), (np.repeat(np.arange(n), k), self.indices.ravel())), shape=(n, n))
        return self._connectivity

    @property
    def weights(self):
        if self._weights is None:
            import graphlearning as gl

            k = self.indices.shape[1]
            self._weights = gl.weightmatrix.knn(self.features, k, knn_data=(self.indices, self.distances))
        return self._weights


EXACT_MAX = 20_000  # beyond this many rows the graph's neighbours come from NN-descent


def knn_graph(features: np.ndarray, n_neighbors: int = N_NEIGHBORS, exact_max: int = EXACT_MAX) -> KnnGraph:
    """The kNN graph of the L2-normalised features (each row's neighbours include itself): exact up to
    `exact_max` rows, NN-descent on a sampled PCA beyond (`sslapp.estimators.neighbours`)."""
    k = int(max(1, min(n_neighbors, len(features))))
    if len(features) > exact_max:
        from sslapp.estimators.neighbours import approximate_knn, sampled_pca

        X = sampled_pca(features)
        indices, distances = approximate_knn(X, k)
        return KnnGraph(indices, distances, X)
    from sklearn.neighbors import NearestNeighbors

    X = l2_normalize(features)
    distances, indices = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    return KnnGraph(indices, distances, X)


def label_spreading(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, n_classes: int, *,
                    alpha: float = 0.2, max_iter: int = 50, graph=None) -> np.ndarray:
    """Class distributions (N, n_classes) spread from the labelled rows over the kNN graph."""
    graph = knn_graph(features) if graph is None else graph
    X = graph.features  # the kernel is the graph; the rows only give the count
    y = np.full(len(X), -1, dtype=np.int64)
    y[labeled_idx] = labels
    model = LabelSpreading(kernel=lambda a, b: graph.connectivity.copy(), alpha=alpha, max_iter=max_iter)
    import warnings

    with warnings.catch_warnings():  # slow convergence on a few isolated points is not an error
        warnings.simplefilter("ignore")
        model.fit(X, y)
    dist = np.zeros((len(X), n_classes))
    dist[:, model.classes_[model.classes_ >= 0]] = model.label_distributions_
    dist = np.nan_to_num(dist, nan=0.0)
    total = dist.sum(axis=1, keepdims=True)
    return np.where(total > 0, dist / np.maximum(total, 1e-12), 1.0 / n_classes)


def spreading_pseudo_labels(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, n_classes: int,
                            *, keep: float = POISSON_KEEP, **kwargs) -> PseudoLabels:
    """Label spreading's class for the most confident `keep` share of the unlabelled rows, per predicted
    class, as Poisson learning's. (A fixed 0.9 threshold kept none on a 40-text set with 3 labels a topic:
    at alpha 0.2 spreading is rarely that sure with few labels, so the app's "spreading" was a probe on the
    labels alone, while the choice had measured the spread distribution itself.)"""
    dist = label_spreading(features, labeled_idx, labels, n_classes, **kwargs)
    return _most_confident(dist, labeled_idx, labels, keep, "spreading")


def _most_confident(dist: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, keep: float,
                    method: str) -> PseudoLabels:
    """The most confident `keep` share of the unlabelled rows of a class distribution, per predicted class
    so one large class cannot take every pseudo-label (at most MAX_PSEUDO in all)."""
    unl = np.flatnonzero(_unlabelled_mask(len(dist), labeled_idx))
    # rows of a graph component without labels carry no information (a uniform row): not pseudo-labelled
    unl = unl[dist[unl].max(axis=1) > 1.0 / max(len(np.unique(labels)), 1) + 1e-9]
    pred, conf = dist[unl].argmax(axis=1), dist[unl].max(axis=1)
    chosen = []
    share = min(keep, MAX_PSEUDO / max(len(unl), 1))
    for k in np.unique(pred):
        rows = np.flatnonzero(pred == k)
        chosen.append(rows[np.argsort(-conf[rows])[:max(1, int(round(share * len(rows))))]])
    take = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    return PseudoLabels(unl[take], pred[take], conf[take], method)


def poisson_pseudo_labels(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, n_classes: int,
                          *, keep: float = POISSON_KEEP, graph: KnnGraph | None = None) -> PseudoLabels:
    """Poisson learning's class for the most confident `keep` share of the unlabelled rows, chosen per
    predicted class so one large class cannot take every pseudo-label."""
    from sslapp.estimators.poisson import poisson_distribution

    graph = knn_graph(features) if graph is None else graph
    dist = poisson_distribution(graph.weights, labeled_idx, labels, n_classes)
    return _most_confident(dist, labeled_idx, labels, keep, "poisson")


def self_training_pseudo_labels(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray,
                                n_classes: int, *, fraction: float = 0.3, rounds: int = 3,
                                seed: int = 0) -> PseudoLabels:
    """Self-training with the linear probe: add its most confident predictions, refit, repeat.

    A fixed probability threshold adds nothing with few labels (a regularised probe is never
    0.9 sure), so each round takes the most confident rows *per predicted class*, growing to
    `fraction` of the pool; class balance keeps one easy class from taking over. Pseudo-labels
    are re-predicted every round, so early mistakes can be undone.
    """
    unl = np.flatnonzero(_unlabelled_mask(len(features), labeled_idx))
    chosen, pseudo, conf = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    per_class_final = max(1, int(fraction * len(unl) / n_classes))
    for r in range(1, rounds + 1):
        X = np.concatenate([features[labeled_idx], features[chosen]])
        y = np.concatenate([labels, pseudo])
        probe = LinearProbe(n_classes, seed=seed).fit(X, y)
        proba = probe.predict_proba(features[unl])
        pred, c = proba.argmax(axis=1), proba.max(axis=1)
        take = max(1, per_class_final * r // rounds)
        keep = np.concatenate([np.flatnonzero(pred == k)[np.argsort(-c[pred == k])[:take]] for k in range(n_classes)])
        chosen, pseudo, conf = unl[keep], pred[keep], c[keep]
    return PseudoLabels(chosen, pseudo, conf, "self-training")


def pseudo_labels(method: str, features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray,
                  n_classes: int, *, seed: int = 0, graph=None) -> PseudoLabels:
    """`graph`: a `knn_graph(features)` built once, reused by spreading (ignored by the others)."""
    if method == "spreading":
        return spreading_pseudo_labels(features, labeled_idx, labels, n_classes, graph=graph)
    if method == "poisson":
        return poisson_pseudo_labels(features, labeled_idx, labels, n_classes, graph=graph)
    if method == "self-training":
        return self_training_pseudo_labels(features, labeled_idx, labels, n_classes, seed=seed)
    raise ValueError(f"unknown propagation method {method!r}; use one of {', '.join(METHODS)}")
