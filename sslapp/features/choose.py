"""Which embedding to use, by measurement on the user's own labels (arrays in, a Choice out).

Once at least two classes have two labels or more, each candidate is scored the way the app
classifies: cross-validated accuracy of Poisson learning over the candidate's kNN graph (each fold
hides one label of every class that has two, and the rest are the sources). Nearest-class-mean
accuracy was tried first and chose wrongly on mnist (ImageNet over the patch dictionary, 0.867
against 0.940 at 50 labels), because the graph, not the class means, carries the classifier.
Before that there is nothing to measure, so a prior measured on the shared datasets decides
(docs/benchmarks.md, "Choosing the embedding"): each modality's `start_order` (the ImageNet start on
colour photos, pixel PCA on grayscale images, MiniLM on texts), and a pretraining run only once labels
show it is better.
A candidate must beat the prior's pick by one standard error (`replace_margin`) to replace it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MIN_PER_CLASS = 2


@dataclass
class Choice:
    """The index of the chosen candidate, why, and each candidate's score (None: not measurable)."""

    index: int
    reason: str
    scores: list[float | None] = field(default_factory=list)
    n_scored: int = 0  # labelled images the scores are measured on


MAX_FOLDS = 5
MAX_GRAPH_ROWS = 10_000  # larger sets are scored on the labelled rows plus a random sample of the rest


def graph_cv_accuracy(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray,
                      graph=None) -> float | None:
    """Cross-validated accuracy of Poisson learning on the labelled rows; None when fewer than two
    classes have MIN_PER_CLASS labels. Only classes with that many labels are held out; every label
    not held out is a source."""
    from sslapp.estimators.poisson import poisson_distribution
    from sslapp.estimators.propagate import knn_graph

    labeled_idx = np.asarray(labeled_idx, np.int64)
    labels = np.asarray(labels, np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    scored = classes[counts >= MIN_PER_CLASS]
    if len(scored) < 2:
        return None
    if graph is None and len(features) > MAX_GRAPH_ROWS:
        keep, labeled_idx = scoring_rows(len(features), labeled_idx)
        features = features[keep]
    graph = knn_graph(features) if graph is None else graph
    n_classes = int(labels.max()) + 1
    folds = int(min(MAX_FOLDS, counts[counts >= MIN_PER_CLASS].min()))
    fold_of = np.full(len(labels), -1)
    rng = np.random.default_rng(0)
    for c in scored:
        rows = np.flatnonzero(labels == c)
        fold_of[rng.permutation(rows)] = np.arange(len(rows)) % folds
    right = total = 0
    for f in range(folds):
        test = fold_of == f
        dist = poisson_distribution(graph.weights, labeled_idx[~test], labels[~test], n_classes)
        right += int((dist[labeled_idx[test]].argmax(axis=1) == labels[test]).sum())
        total += int(test.sum())
    return right / max(total, 1)


def scoring_rows(n: int, labeled_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, the labelled rows' positions in them): the rows a candidate is scored on. Up to
    MAX_GRAPH_ROWS that is every row; beyond, the labelled rows and a seeded sample of the others, so a
    candidate that is not in use needs features for 10,000 items, not all of them."""
    labeled_idx = np.asarray(labeled_idx, np.int64)
    if n <= MAX_GRAPH_ROWS:
        return np.arange(n), labeled_idx
    others = np.setdiff1d(np.arange(n), labeled_idx)
    sample = np.random.default_rng(0).choice(others, max(0, MAX_GRAPH_ROWS - len(labeled_idx)), replace=False)
    return np.concatenate([labeled_idx, sample]), np.arange(len(labeled_idx))


def measurable(labels: np.ndarray) -> bool:
    """Whether these labels (the first of each class, as `choose` scores them) can tell candidates apart."""
    counts = np.bincount(np.asarray(labels, np.int64)) if len(labels) else np.zeros(0, np.int64)
    return int((counts >= MIN_PER_CLASS).sum()) >= 2


SCORE_PER_CLASS = 5


def first_per_class(labeled_idx: np.ndarray, labels: np.ndarray, k: int = SCORE_PER_CLASS
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The first `k` labels of each class, in the order given (oldest first). Later labels come from
    uncertainty sampling, which picks exactly the images the embedding in use gets wrong: scored on
    them, the other candidates look better than they are (on mnist at 100 labels the app left the
    patch dictionary, 0.954, for ImageNet features, 0.877). The first labels per class are the typical
    picks (or the user's own choice) and stand for the class."""
    keep = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[:k]] = True
    return labeled_idx[keep], labels[keep]


def choose(candidates: Sequence[np.ndarray], labeled_idx: np.ndarray, labels: np.ndarray, prior: int,
           names: Sequence[str] | None = None, plural: str = "images") -> Choice:
    """Pick among feature matrices (rows aligned): by measured accuracy when labels allow, else `prior`.
    `labeled_idx`/`labels` in the order they were given (oldest first); `plural` names the items."""
    names = list(names) if names is not None else [f"candidate {i}" for i in range(len(candidates))]
    labeled_idx, labels = first_per_class(np.asarray(labeled_idx, np.int64), np.asarray(labels, np.int64))
    scores = [graph_cv_accuracy(f, labeled_idx, labels) for f in candidates]
    measured = [i for i, s in enumerate(scores) if s is not None]
    n_scored = int(np.isin(labels, np.unique(labels)[np.bincount(labels)[np.unique(labels)] >= MIN_PER_CLASS]).sum()) \
        if len(labels) else 0
    if not measured:
        return Choice(prior, f"no class has {MIN_PER_CLASS} labels yet, so nothing can be measured: "
                             f"{names[prior]}, the measured best start for {plural} like these", scores, 0)
    best = max(measured, key=lambda i: scores[i])
    base = scores[prior]
    if base is not None and scores[best] - base <= replace_margin(base, n_scored) + 1e-9:
        best = prior
    ranked = ", ".join(f"{names[i]} {scores[i]:.0%}" for i in sorted(measured, key=lambda i: -scores[i]))
    return Choice(best, f"best on your {n_scored} labels (Poisson learning, cross-validated): {ranked}",
                  scores, n_scored)


def replace_margin(score: float, n: int) -> float:
    """How much better a candidate must score to replace the prior's pick: one standard error of the
    prior's accuracy on n labels (at least one label's worth), so a handful of labels cannot flip the
    choice on noise."""
    n = max(n, 1)
    return max(1.0 / n, (score * (1.0 - score) / n) ** 0.5)


def prior_index(starts: Sequence[str | None], order: Sequence[str]) -> int:
    """The candidate to use before labels can measure: the first of `order` (the modality's
    `start_order`) among the candidates' starts, else the newest candidate (only pretraining runs)."""
    for want in order:
        if want in starts:
            return list(starts).index(want)
    return len(starts) - 1
