"""Likely label errors: which of a person's labels the features disagree with, most suspicious first.

Arrays in, arrays out: `rank_label_issues(features, labels)` takes the features of the labelled
images and their class indices, and returns the order to review them in, a score per label and
the class the features suggest instead.

How a label is scored:
1. Out-of-fold class probabilities, so no label is judged by a model that saw it (cleanlab's
   requirement), from two predictors:
   - "probe": the app's own linear probe (`sslapp.estimators.linear.LinearProbe`: logistic regression
     on L2-normalised features, balanced class weights) in stratified K-fold, K = min(5, smallest
     class), at least 2;
   - "knn": each label predicted from its k nearest labelled neighbours (cosine, itself left out,
     similarity-weighted votes, k = the smallest class's size, 2 to 10), the kNN-classifier route
     cleanlab took for label issues without a model (cleanlab issue #735).
   "auto" averages the two ("ensemble"), except with few labels (a checked class with fewer than
   PROBE_MIN_PER_CLASS labels, or fewer than PROBE_MIN_MEAN per class on average), where a fold
   would hold out most of a class and kNN alone is used.
2. cleanlab's label-quality score of the given label under those probabilities
   (`cleanlab.rank.get_label_quality_scores`, QUALITY_METHOD).
3. score = 1 - quality: higher is more suspicious. With "self_confidence" the score is one minus
   the out-of-fold probability of the given label.

Measured (benchmarks/bench_review.py, 400 labels with 20 flipped, 3 seeds, precision of the top 20,
ensemble / probe / kNN / cleanlab's default find_label_issues on scikit-learn LogisticRegression):
mnist-ImageNet 0.83 / 0.83 / 0.73 / 0.75, mnist-patches 0.87 / 0.85 / 0.83 / 0.70, cifar10-ImageNet
0.63 / 0.57 / 0.48 / 0.52, cifar10-patches 0.37 / 0.25 / 0.20 / 0.22 (random 0.05). self_confidence
beat normalized_margin in 7 of those 8 ensemble/probe cells (cifar10-ImageNet ensemble 0.63 vs 0.40).
With 3-12 labels per class (`--sweep`) neither route wins everywhere; kNN held up best at 3 per class on
the patch dictionary.

A class with a single label cannot be checked (nothing of its own to compare with): its labels
still train the probe and vote as neighbours, but get score NaN and come last in `order`.
"""

from __future__ import annotations

import numpy as np

from sslapp.vectors import l2_normalize

MAX_FOLDS = 5
PROBE_MIN_PER_CLASS = 3  # below this in some checked class, or
PROBE_MIN_MEAN = 3.0  # below this many labels per class on average: kNN alone
MAX_NEIGHBOURS = 10
QUALITY_METHOD = "self_confidence"  # measured on planted flips, see above
ROUTES = ("auto", "ensemble", "probe", "knn")
MIN_CLASSES = 2  # classes with at least MIN_PER_CLASS labels needed to review anything
MIN_PER_CLASS = 2


def too_few_labels(counts: dict[str, int] | list[int]) -> str | None:
    """Why labels with these per-class counts cannot be reviewed yet (None when they can), in words."""
    values = list(counts.values()) if isinstance(counts, dict) else list(counts)
    enough = sum(1 for n in values if n >= MIN_PER_CLASS)
    if enough >= MIN_CLASSES:
        return None
    return (f"Too few labels to look for label errors: give at least {MIN_PER_CLASS} labels to each of at least "
            f"{MIN_CLASSES} classes (now {enough} class{'es' if enough != 1 else ''} with {MIN_PER_CLASS} or more, "
            f"{sum(values)} label{'s' if sum(values) != 1 else ''} in all).")


def choose_method(labels: np.ndarray) -> str:
    """"ensemble" or "knn" for these labels (see the module docstring)."""
    counts = np.bincount(np.asarray(labels, np.int64))
    checked = counts[counts >= MIN_PER_CLASS]
    if len(checked) < MIN_CLASSES:
        raise ValueError(too_few_labels(counts.tolist()))
    if checked.min() < PROBE_MIN_PER_CLASS or counts[counts > 0].mean() < PROBE_MIN_MEAN:
        return "knn"
    return "ensemble"


def probe_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int, seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities of the app's linear probe; rows of single-label classes are NaN."""
    from sklearn.model_selection import StratifiedKFold

    from sslapp.estimators.linear import LinearProbe

    counts = np.bincount(labels, minlength=n_classes)
    checked = np.flatnonzero(counts[labels] >= MIN_PER_CLASS)
    always = np.flatnonzero(counts[labels] < MIN_PER_CLASS)
    k = int(max(2, min(MAX_FOLDS, counts[labels[checked]].min())))
    proba = np.full((len(labels), n_classes), np.nan)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for tr, te in folds.split(checked, labels[checked]):
        train = np.concatenate([checked[tr], always])
        probe = LinearProbe(n_classes, seed=seed).fit(features[train], labels[train])
        proba[checked[te]] = probe.predict_proba(features[checked[te]])
    return proba


def knn_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Leave-one-out kNN class probabilities among the labelled rows (similarity-weighted votes);
    rows of single-label classes are NaN."""
    counts = np.bincount(labels, minlength=n_classes)
    x = l2_normalize(features)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    k = int(np.clip(counts[counts >= MIN_PER_CLASS].min(), 2, MAX_NEIGHBOURS))
    k = min(k, len(labels) - 1)
    near = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    weight = np.clip(np.take_along_axis(sim, near, axis=1), 0.0, None) + 1e-3  # opposite directions barely vote
    votes = np.zeros((len(labels), n_classes))
    np.add.at(votes, (np.repeat(np.arange(len(labels)), k), labels[near].ravel()), weight.ravel())
    proba = (votes + 1e-3) / (votes + 1e-3).sum(axis=1, keepdims=True)
    proba[counts[labels] < MIN_PER_CLASS] = np.nan
    return proba


def oof_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int, method: str = "auto",
                      seed: int = 0) -> tuple[np.ndarray, str]:
    """(out-of-fold probabilities (N, C), the route used): one of ROUTES ("auto" chooses)."""
    problem = too_few_labels(np.bincount(labels, minlength=n_classes).tolist())
    if problem:
        raise ValueError(problem)
    used = choose_method(labels) if method == "auto" else method
    if used == "probe":
        return probe_probabilities(features, labels, n_classes, seed), used
    if used == "knn":
        return knn_probabilities(features, labels, n_classes), used
    if used == "ensemble":
        probe = probe_probabilities(features, labels, n_classes, seed)
        return (probe + knn_probabilities(features, labels, n_classes)) / 2, used
    raise ValueError(f"method must be one of {', '.join(ROUTES)}, not {method!r}")


def rank_from_probabilities(labels: np.ndarray, proba: np.ndarray, quality: str = QUALITY_METHOD
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, scores, suggested) from out-of-fold probabilities (rows of NaN: not checked)."""
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, np.int64)
    checked = ~np.isnan(proba).any(axis=1)
    scores = np.full(len(labels), np.nan)
    if checked.any():
        p = np.clip(proba[checked], 0.0, 1.0)
        p = p / p.sum(axis=1, keepdims=True)
        scores[checked] = 1.0 - get_label_quality_scores(labels[checked], p, method=quality)
    suggested = labels.copy()
    suggested[checked] = proba[checked].argmax(axis=1)
    # most suspicious first; ties (and NaN, last) keep row order so the ranking is deterministic
    order = np.lexsort((np.arange(len(labels)), -np.nan_to_num(scores, nan=-1.0)))
    return order, scores, suggested


def rank_label_issues(features: np.ndarray, labels: np.ndarray, seed: int = 0, *, n_classes: int | None = None,
                      method: str = "auto", quality: str = QUALITY_METHOD
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, scores, suggested) for labelled rows `features` (N, D) with classes `labels` (N,).

    order: row indices, most suspicious first (unchecked rows last); scores: (N,) in [0, 1], how likely
    the label is wrong (NaN: not checked, its class has one label); suggested: (N,) the most likely
    class of each row by its out-of-fold probabilities (its own label when unchecked).
    `method` one of ROUTES; `quality` a cleanlab method ("self_confidence", "normalized_margin").
    """
    features = np.asarray(features, np.float64)
    labels = np.asarray(labels, np.int64)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"features must be (N, D) with one row per label; got {features.shape} for {len(labels)} "
                         "labels")
    if len(labels) and labels.min() < 0:
        raise ValueError("labels must be class indices 0..C-1")
    n_classes = int(n_classes if n_classes is not None else (labels.max() + 1 if len(labels) else 0))
    proba, _ = oof_probabilities(features, labels, n_classes, method, seed)
    return rank_from_probabilities(labels, proba, quality)
