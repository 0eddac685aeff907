"""Likely label errors: which of a person's labels the features clearly contradict, most suspicious first.

Arrays in, a `LabelReview` out: `review_labels(features, labels, unlabelled=...)` takes the features
of the labelled items, their class indices and (optionally) the features of the other items, and
returns the order to review them in, a score per label, the class the features favour, and which
labels are *flagged*: contradicted clearly enough to show a person.

How a label is judged:
1. Out-of-fold class probabilities, so no label is judged by a model that saw it (cleanlab's
   requirement). The route ("auto" chooses):
   - "graph": Poisson learning over the kNN graph of all the items (`sslapp.estimators.poisson`, the
     app's own classifier), leaving out one label at a time up to MAX_LEAVE_ONE_OUT labels (at 5 a
     class it found 3-4 more of 30 flips than 5 folds), else stratified K-fold (K = min(5, smallest
     class), at least 2).
     Poisson learning balances its sources per class and standardises each class's scores, so a
     class with many labels does not win by count: the prior-corrected vote a few labels need. The
     unlabelled items carry the labels along the data, which a vote among the labels alone cannot;
   - "graph+probe": the mean of that and the app's linear probe in the same folds (balanced class
     weights), once every checked class has PROBE_MIN_PER_CLASS labels and PROBE_MIN_MEAN on average
     (at 5 a class the probe added flagged right labels and no flips; at 40 a class it found more
     flips: P@20 0.70 against 0.58 on cifar10/ImageNet, 0.83 against 0.72 on mnist/ImageNet);
   - "probe", "knn" (a vote among the labels alone) and "ensemble" (their mean): the routes of the
     first version, kept for comparison (benchmarks/bench_review.py).
2. Calibration: one power s of the probabilities, fitted by maximum likelihood of the given labels
   (most labels are right), so the probabilities are as sharp as the features earn: flat when the
   features cannot tell the classes apart, and then nothing is flagged.
3. score = 1 - cleanlab's label quality (`cleanlab.rank.get_label_quality_scores`, self_confidence):
   one minus the calibrated probability of the given label. `order` sorts by it.
4. A label is flagged only when another class is at least FLAG_ODDS times as likely as the label
   (odds = p(suggested) / p(label)); below that margin the check does not guess.

Measured (benchmarks/bench_review.py --few, docs/benchmarks.md): with 5 labels a class, 3 of them
flipped, or one class at 30 labels and the rest at 4, the first version flagged 15-40 correct labels
of 50-66 (one big class dominated the vote); this flags 1-7, and finds as many or more of the flips in
the 8 it shows on the embeddings that can tell the classes apart (mnist, cifar10 with ImageNet features).

A class with fewer than MIN_PER_CLASS labels cannot be checked (nothing of its own to compare with):
its labels still teach the others, get score NaN and come last; `unchecked_classes` names them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sslapp.vectors import l2_normalize

MAX_FOLDS = 5
PROBE_MIN_PER_CLASS = 3  # below this in some checked class, or
PROBE_MIN_MEAN = 10.0  # below this many labels per class on average: the graph alone
MAX_NEIGHBOURS = 10
MAX_GRAPH_ROWS = 10_000  # the labelled rows plus a seeded sample of the rest
MAX_LEAVE_ONE_OUT = 100  # up to this many checked labels the graph leaves out one label at a time
FLAG_ODDS = 5.0  # another class this many times as likely as the label: flagged (measured, see above)
QUALITY_METHOD = "self_confidence"
ROUTES = ("auto", "graph", "graph+probe", "ensemble", "probe", "knn")
MIN_CLASSES = 2  # classes with at least MIN_PER_CLASS labels needed to review anything
MIN_PER_CLASS = 2
SHARPNESS_GRID = np.geomspace(0.25, 16.0, 25)


class LabelReview(NamedTuple):
    """order: rows most suspicious first (unchecked last); scores: (N,) in [0, 1], one minus the
    calibrated probability of the label (NaN: unchecked); suggested: (N,) the most likely class (the
    label itself when unchecked); flagged: (N,) bool, clearly contradicted; odds: (N,) p(suggested) /
    p(label) (1 when they agree or unchecked); route: how the probabilities were made."""

    order: np.ndarray
    scores: np.ndarray
    suggested: np.ndarray
    flagged: np.ndarray
    odds: np.ndarray
    route: str


def too_few_labels(counts: dict[str, int] | list[int]) -> str | None:
    """Why labels with these per-class counts cannot be reviewed yet (None when they can), in words."""
    values = list(counts.values()) if isinstance(counts, dict) else list(counts)
    enough = sum(1 for n in values if n >= MIN_PER_CLASS)
    if enough >= MIN_CLASSES:
        return None
    return (f"Too few labels to look for label errors: give at least {MIN_PER_CLASS} labels to each of at least "
            f"{MIN_CLASSES} classes (now {enough} class{'es' if enough != 1 else ''} with {MIN_PER_CLASS} or more, "
            f"{sum(values)} label{'s' if sum(values) != 1 else ''} in all).")


def unchecked_classes(counts: dict[str, int]) -> list[str]:
    """Classes with labels but too few to check them, each as a sentence for the person."""
    out = []
    for name, n in counts.items():
        if 0 < n < MIN_PER_CLASS:
            more = MIN_PER_CLASS - n
            out.append(f"Too few labels in {name} to check it ({n} label{'s' if n != 1 else ''}): give it "
                       f"{more} more and check again.")
    return out


def choose_method(labels: np.ndarray) -> str:
    """"graph" or "graph+probe" for these labels (see the module docstring)."""
    counts = np.bincount(np.asarray(labels, np.int64))
    checked = counts[counts >= MIN_PER_CLASS]
    if len(checked) < MIN_CLASSES:
        raise ValueError(too_few_labels(counts.tolist()))
    if checked.min() < PROBE_MIN_PER_CLASS or counts[counts > 0].mean() < PROBE_MIN_MEAN:
        return "graph"
    return "graph+probe"


def _folds(labels: np.ndarray, n_classes: int, seed: int, one_each: bool = False) -> np.ndarray:
    """Fold of each checked row (stratified, K = min(5, smallest checked class), at least 2; with
    `one_each`, a fold per row); -1 for rows of classes too small to check (always taught, never held out)."""
    counts = np.bincount(labels, minlength=n_classes)
    if one_each:
        checked = counts[labels] >= MIN_PER_CLASS
        return np.where(checked, np.cumsum(checked) - 1, -1)
    k = int(max(2, min(MAX_FOLDS, counts[counts >= MIN_PER_CLASS].min())))
    fold = np.full(len(labels), -1)
    rng = np.random.default_rng(seed)
    for c in np.flatnonzero(counts >= MIN_PER_CLASS):
        rows = np.flatnonzero(labels == c)
        fold[rng.permutation(rows)] = np.arange(len(rows)) % k
    return fold


def graph_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int, seed: int = 0,
                        unlabelled: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold Poisson-learning probabilities over the kNN graph of the labelled rows and
    `unlabelled` (a seeded sample of MAX_GRAPH_ROWS at most); rows of unchecked classes are NaN."""
    from sslapp.estimators.poisson import poisson_distribution
    from sslapp.estimators.propagate import knn_graph

    pool = features
    if unlabelled is not None and len(unlabelled):
        room = max(0, MAX_GRAPH_ROWS - len(features))
        if len(unlabelled) > room:
            unlabelled = unlabelled[np.sort(np.random.default_rng(seed).choice(len(unlabelled), room, replace=False))]
        pool = np.vstack([features, unlabelled])
    graph = knn_graph(pool)
    counts = np.bincount(labels, minlength=n_classes)
    fold = _folds(labels, n_classes, seed, one_each=int((counts[labels] >= MIN_PER_CLASS).sum()) <= MAX_LEAVE_ONE_OUT)
    proba = np.full((len(labels), n_classes), np.nan)
    rows = np.arange(len(labels))
    for f in range(fold.max() + 1):
        held = fold == f
        dist = poisson_distribution(graph.weights, rows[~held], labels[~held], n_classes, sharpness=1.0)
        proba[held] = dist[rows[held]]
    return proba


def probe_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int, seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities of the app's linear probe; rows of unchecked classes are NaN."""
    from sslapp.estimators.linear import LinearProbe

    fold = _folds(labels, n_classes, seed)
    proba = np.full((len(labels), n_classes), np.nan)
    for f in range(fold.max() + 1):
        held = fold == f
        probe = LinearProbe(n_classes, seed=seed).fit(features[~held], labels[~held])
        proba[held] = probe.predict_proba(features[held])
    return proba


def knn_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Leave-one-out kNN class probabilities among the labelled rows alone (similarity-weighted votes,
    k = the smallest checked class, 2 to 10); rows of unchecked classes are NaN. A big class wins
    this vote by count: kept to compare with (the first version's route at few labels)."""
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


def calibrate(proba: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """(proba ** s, renormalised; s): the power that makes the given labels most likely, fitted on
    the checked rows (NaN rows stay NaN). Flat features get s < 1 and flat probabilities."""
    checked = ~np.isnan(proba).any(axis=1)
    if not checked.any():
        return proba, 1.0
    logp = np.log(np.clip(proba[checked], 1e-12, 1.0))
    given = labels[checked]

    def tempered(s: float) -> np.ndarray:
        z = s * logp
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    fit = [np.log(np.clip(tempered(s)[np.arange(len(given)), given], 1e-12, 1.0)).mean() for s in SHARPNESS_GRID]
    s = float(SHARPNESS_GRID[int(np.argmax(fit))])
    out = proba.copy()
    out[checked] = tempered(s)
    return out, s


def oof_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int, method: str = "auto",
                      seed: int = 0, unlabelled: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """(out-of-fold probabilities (N, C), uncalibrated, the route used): one of ROUTES ("auto" chooses)."""
    problem = too_few_labels(np.bincount(labels, minlength=n_classes).tolist())
    if problem:
        raise ValueError(problem)
    used = choose_method(labels) if method == "auto" else method
    if used == "graph":
        return graph_probabilities(features, labels, n_classes, seed, unlabelled), used
    if used == "graph+probe":
        graph = calibrate(graph_probabilities(features, labels, n_classes, seed, unlabelled), labels)[0]
        return (graph + probe_probabilities(features, labels, n_classes, seed)) / 2, used
    if used == "probe":
        return probe_probabilities(features, labels, n_classes, seed), used
    if used == "knn":
        return knn_probabilities(features, labels, n_classes), used
    if used == "ensemble":
        probe = probe_probabilities(features, labels, n_classes, seed)
        return (probe + knn_probabilities(features, labels, n_classes)) / 2, used
    raise ValueError(f"method must be one of {', '.join(ROUTES)}, not {method!r}")


def rank_from_probabilities(labels: np.ndarray, proba: np.ndarray, quality: str = QUALITY_METHOD,
                            odds: float = FLAG_ODDS, route: str = "") -> LabelReview:
    """The review from out-of-fold probabilities (rows of NaN: not checked), calibrated first."""
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, np.int64)
    proba, _ = calibrate(np.asarray(proba, np.float64), labels)
    checked = ~np.isnan(proba).any(axis=1)
    scores = np.full(len(labels), np.nan)
    suggested = labels.copy()
    ratio = np.ones(len(labels))
    if checked.any():
        p = np.clip(proba[checked], 0.0, 1.0)
        p = p / p.sum(axis=1, keepdims=True)
        scores[checked] = 1.0 - get_label_quality_scores(labels[checked], p, method=quality)
        suggested[checked] = p.argmax(axis=1)
        ratio[checked] = p.max(axis=1) / np.maximum(p[np.arange(len(p)), labels[checked]], 1e-12)
    flagged = checked & (suggested != labels) & (ratio >= odds)
    # most suspicious first; ties (and NaN, last) keep row order so the ranking is deterministic
    order = np.lexsort((np.arange(len(labels)), -np.nan_to_num(scores, nan=-1.0)))
    return LabelReview(order, scores, suggested, flagged, ratio, route)


def review_labels(features: np.ndarray, labels: np.ndarray, seed: int = 0, *, n_classes: int | None = None,
                  method: str = "auto", unlabelled: np.ndarray | None = None, quality: str = QUALITY_METHOD,
                  odds: float = FLAG_ODDS) -> LabelReview:
    """The review of labelled rows `features` (N, D) with classes `labels` (N,); `unlabelled` (M, D)
    the features of the other items, which the graph routes propagate through (better with them).
    `method` one of ROUTES; `quality` a cleanlab method; `odds` the flagging margin."""
    features = np.asarray(features, np.float64)
    labels = np.asarray(labels, np.int64)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"features must be (N, D) with one row per label; got {features.shape} for {len(labels)} "
                         "labels")
    if len(labels) and labels.min() < 0:
        raise ValueError("labels must be class indices 0..C-1")
    if unlabelled is not None:
        unlabelled = np.asarray(unlabelled, np.float64)
        if unlabelled.ndim != 2 or (len(unlabelled) and unlabelled.shape[1] != features.shape[1]):
            raise ValueError(f"unlabelled must be (M, {features.shape[1]}); got {unlabelled.shape}")
    n_classes = int(n_classes if n_classes is not None else (labels.max() + 1 if len(labels) else 0))
    proba, route = oof_probabilities(features, labels, n_classes, method, seed, unlabelled)
    return rank_from_probabilities(labels, proba, quality, odds, route)
