"""One call from embeddings and a few labels to class probabilities for every row.

Used by the finetune job (linear mode) and by the label-efficiency benchmark, so both measure
the very pipeline the app runs: propagation over the unlabelled pool (when it helps), then a
linear probe on L2-normalised features with balanced class weights.
"""

from __future__ import annotations

import numpy as np

from sslapp.estimators.linear import LinearProbe
from sslapp.estimators.propagate import METHODS, PseudoLabels, knn_graph, pseudo_labels

# Pseudo-labels count less than a person's labels in the final fit.
PSEUDO_WEIGHT = 0.5


# "auto" compares these by cross-validation once every class has this many labels: below it, Poisson
# learning (measured best at 1-3 labels per class); 3-fold cross-validation of 3 labels a class holds
# out one each, and one text more or less right flipped the choice on a 40-text set.
AUTO_CV_MIN_PER_CLASS = 4
CV_CANDIDATES = ("poisson", "spreading", None)


def choose_propagation(propagate: bool | str, n_labels: int, n_classes: int, n_rows: int) -> str | None:
    """Resolve `propagate` ("auto", True/"on", False/"off", or a method name) to a method or None.

    Before any cross-validation, "auto" means Poisson learning: on the ImageNet and patch
    embeddings of mnist, cifar10 and pneumoniamnist it beat label spreading and no propagation at
    1 and 3 labels per class in 11 of 12 settings (docs/benchmarks.md "Training on labels").
    """
    if propagate in (False, None, "off", "none", "false"):
        return None
    if n_rows <= n_labels or n_classes < 2:
        return None  # nothing unlabelled to use, or nothing to tell apart
    if propagate in (True, "on", "true", "auto"):
        return "poisson"
    if propagate in METHODS:
        return str(propagate)
    raise ValueError(f"propagate must be 'auto', 'on', 'off', {', '.join(repr(m) for m in METHODS)}, "
                     f"not {propagate!r}")


def resolve_propagation(propagate: bool | str, features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray,
                        n_classes: int, seed: int = 0, graph=None) -> tuple[str | None, str]:
    """The method to use and why. "auto" with >= 3 labels in every labelled class lets this
    workspace's own labels decide, by 3-fold cross-validation of Poisson learning, spreading and no
    propagation (propagation can hurt when the kNN graph mixes classes, as on cifar10 PCA at 30 labels)."""
    from sslapp.estimators.evaluate import cross_validate

    present = np.unique(labels)
    method = choose_propagation(propagate, len(labels), len(present), len(features))
    if propagate != "auto" or method is None:
        return method, "as asked" if propagate != "auto" else "nothing to propagate to"
    if np.bincount(labels)[present].min() < AUTO_CV_MIN_PER_CLASS:
        return method, "few labels: Poisson learning (measured best at 1-3 labels per class)"
    scores = {}
    graph = knn_graph(features) if graph is None else graph
    for candidate in CV_CANDIDATES:
        def fit_predict(tr, te, candidate=candidate):
            return _transductive(candidate, features, labeled_idx, labels, tr, te, n_classes, seed, graph)

        # plain accuracy, as measured when this choice was made (docs/benchmarks.md); the headline
        # estimate is class-balanced
        scores[candidate] = cross_validate(labels, fit_predict, n_classes, max_folds=3, loo_up_to=0,
                                           seed=seed).pooled or 0.0
    best = max(CV_CANDIDATES, key=lambda c: scores[c])  # ties go to the earlier (measured better) one
    ranked = ", ".join(f"{c or 'none'} {scores[c]:.3f}" for c in sorted(CV_CANDIDATES, key=lambda c: -scores[c]))
    return best, f"cross-validation: {ranked}"


def _transductive(method: str | None, features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray,
                  tr: np.ndarray, te: np.ndarray, n_classes: int, seed: int, graph) -> np.ndarray:
    """Held-out class probabilities of one propagation method, read off the graph directly (a probe
    on the fold's labels for "none"): a tenth of the cost of fitting the final probe per fold, which
    with every unlabelled image pseudo-labelled is the expensive part."""
    from sslapp.estimators.poisson import poisson_distribution
    from sslapp.estimators.propagate import label_spreading

    train_idx, train_labels = labeled_idx[tr], labels[tr]
    if method == "poisson":
        dist = poisson_distribution(graph.weights, train_idx, train_labels, n_classes)
    elif method == "spreading":
        dist = label_spreading(features, train_idx, train_labels, n_classes, graph=graph)
    else:
        return LinearProbe(n_classes, seed=seed).fit(features[train_idx], train_labels).predict_proba(
            features[labeled_idx[te]])
    return dist[labeled_idx[te]]


def join_pseudo_labels(labeled_idx: np.ndarray, labels: np.ndarray, pseudo: PseudoLabels | None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row index, class, sample weight) of the labels followed by the pseudo-labels: weight 1 for a
    person's label, PSEUDO_WEIGHT times the confidence for a pseudo-label. Both modes train on this."""
    idx, y, w = np.asarray(labeled_idx), np.asarray(labels), np.ones(len(labels))
    if pseudo is not None and len(pseudo):
        idx = np.concatenate([idx, pseudo.index])
        y = np.concatenate([y, pseudo.labels])
        w = np.concatenate([w, PSEUDO_WEIGHT * pseudo.confidence])
    return idx, y, w


def fit_with_pseudo_labels(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, n_classes: int,
                           method: str | None, seed: int, graph=None, pseudo: PseudoLabels | None = None
                           ) -> tuple[LinearProbe, PseudoLabels | None]:
    """The linear probe on the labels plus the pseudo-labels of `method` (None: labels only);
    `pseudo` skips deriving them again when the caller already has them."""
    if pseudo is None and method:
        pseudo = pseudo_labels(method, features, labeled_idx, labels, n_classes, seed=seed, graph=graph)
    idx, y, w = join_pseudo_labels(labeled_idx, labels, pseudo)
    return LinearProbe(n_classes, seed=seed).fit(features[idx], y, sample_weight=w), pseudo


def cross_validate_probe(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, n_classes: int,
                         method: str | None, seed: int = 0, graph=None, *, class_names: list[str] | None = None,
                         on_fold=None, check_stop=None, pool_confidence: np.ndarray | None = None):
    """The estimate the app shows for its linear classifier: each fold fits the probe on its own labels
    plus the pseudo-labels they propagate (the held-out labels never reach it), as the final fit does.
    The finetune job and the label-efficiency benchmark both call this, so the benchmark checks the
    very interval a user sees."""
    from sslapp.estimators.evaluate import cross_validate

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        if check_stop is not None:
            check_stop()
        probe, _ = fit_with_pseudo_labels(features, labeled_idx[tr], labels[tr], n_classes, method, seed, graph)
        return probe.predict_proba(features[labeled_idx[te]])

    return cross_validate(labels, fit_predict, n_classes, class_names=class_names, seed=seed, on_fold=on_fold,
                          pool_confidence=pool_confidence)


def fit_probe(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, *, n_classes: int | None = None,
              propagate: bool | str = "auto", seed: int = 0) -> tuple[LinearProbe, PseudoLabels | None]:
    """The probe the app uses, trained on labels plus (optionally) pseudo-labels."""
    features = np.asarray(features)
    labeled_idx = np.asarray(labeled_idx, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labeled_idx) != len(labels):
        raise ValueError("labeled_idx and labels must have the same length")
    if len(labels) == 0:
        raise ValueError("No labels yet: label at least one image per class first.")
    n_classes = int(n_classes if n_classes is not None else labels.max() + 1)
    graph = knn_graph(features) if propagate not in (False, None, "off", "none", "false", "self-training") \
        and len(features) > len(labels) else None
    method, _ = resolve_propagation(propagate, features, labeled_idx, labels, n_classes, seed, graph)
    return fit_with_pseudo_labels(features, labeled_idx, labels, n_classes, method, seed, graph)


def train_on_embeddings(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, *,
                        propagate: bool | str = "auto", seed: int = 0, n_classes: int | None = None) -> np.ndarray:
    """Class probabilities (N, C) for every row of `features`; classes are 0..C-1 as in `labels`.

    C is `n_classes` when given, else labels.max() + 1.
    """
    probe, _ = fit_probe(features, labeled_idx, labels, n_classes=n_classes, propagate=propagate, seed=seed)
    return probe.predict_proba(features)
