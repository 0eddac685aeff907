"""One call from embeddings and a few labels to class probabilities for every row.

Used by the finetune job (linear mode) and by the label-efficiency benchmark, so both measure
the very pipeline the app runs: propagation over the unlabelled pool (when it helps), then a
linear probe on L2-normalised features with balanced class weights.
"""

from __future__ import annotations

import numpy as np

from sslapp.finetune.linear import LinearProbe
from sslapp.finetune.propagate import PseudoLabels, pseudo_labels

# Pseudo-labels count less than a person's labels in the final fit.
PSEUDO_WEIGHT = 0.5


def choose_propagation(propagate: bool | str, n_labels: int, n_classes: int, n_rows: int) -> str | None:
    """Resolve `propagate` ("auto", True/"on", False/"off", or a method name) to a method or None.

    "auto" follows the measurement in docs/benchmarks.md ("Training on labels").
    """
    if propagate in (False, None, "off", "none", "false"):
        return None
    if n_rows <= n_labels or n_classes < 2:
        return None  # nothing unlabelled to use, or nothing to tell apart
    if propagate in (True, "on", "true", "auto"):
        return "spreading"
    if propagate in ("spreading", "self-training"):
        return str(propagate)
    raise ValueError(f"propagate must be 'auto', 'on', 'off', 'spreading' or 'self-training', not {propagate!r}")


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
    method = choose_propagation(propagate, len(labels), len(np.unique(labels)), len(features))
    pseudo = pseudo_labels(method, features, labeled_idx, labels, n_classes, seed=seed) if method else None
    X, y, w = features[labeled_idx], labels, np.ones(len(labels))
    if pseudo is not None and len(pseudo):
        X = np.concatenate([X, features[pseudo.index]])
        y = np.concatenate([y, pseudo.labels])
        w = np.concatenate([w, PSEUDO_WEIGHT * pseudo.confidence])
    return LinearProbe(n_classes, seed=seed).fit(X, y, sample_weight=w), pseudo


def train_on_embeddings(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, *,
                        propagate: bool | str = "auto", seed: int = 0, n_classes: int | None = None) -> np.ndarray:
    """Class probabilities (N, C) for every row of `features`; classes are 0..C-1 as in `labels`.

    C is `n_classes` when given, else labels.max() + 1.
    """
    probe, _ = fit_probe(features, labeled_idx, labels, n_classes=n_classes, propagate=propagate, seed=seed)
    return probe.predict_proba(features)
