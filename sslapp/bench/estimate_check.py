"""Does the estimate the app shows hold? The label-efficiency benchmark's check of it.

At every budget of every simulated user, the app's classifier is trained and its estimate computed
exactly as the finetune job does (`sslapp.estimators.api.cross_validate_probe`: class-balanced, with
its 95% interval), then set beside the truth the user never sees: the class-balanced accuracy (mean
per-class recall) on every image whose label was never revealed. A run is covered when that truth
lies inside the interval; the goal is at least 90% of runs. The plain (pooled) accuracy and its
Wilson interval, the headline before issue 22, are checked the same way as the reference.

`true_balanced` averages over the classes the user has labelled (those the classifier knows, what
the estimate speaks for); `true_balanced_all` over every class in the truth, a class never found
counting 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

GOAL = 0.9
INTERVAL = "Wilson score interval of the mean per-class recall at its effective n = K^2 / sum(1/n_k)"


def fit_and_estimate(features: np.ndarray, revealed: np.ndarray, labels: np.ndarray, seed: int
                     ) -> tuple[np.ndarray, Any]:
    """(the app's predicted class for every row, its CVEstimate or None with one class), as the
    finetune job's linear mode computes them from these labels (propagation "auto")."""
    from sslapp.estimators.api import cross_validate_probe, fit_with_pseudo_labels, resolve_propagation
    from sslapp.estimators.propagate import knn_graph

    seen, local = np.unique(labels, return_inverse=True)
    if len(seen) < 2:
        return np.full(len(features), seen[0]), None
    graph = knn_graph(features) if len(features) > len(labels) else None
    method, _ = resolve_propagation("auto", features, revealed, local, len(seen), seed, graph)
    probe, _ = fit_with_pseudo_labels(features, revealed, local, len(seen), method, seed, graph)
    proba = probe.predict_proba(features)
    pred = seen[proba.argmax(axis=1)]
    pool = np.ones(len(features), bool)
    pool[revealed] = False
    return pred, cross_validate_probe(features, revealed, local, len(seen), method, seed, graph,
                                      pool_confidence=proba.max(axis=1)[pool])


def _recall_mean(pred: np.ndarray, y: np.ndarray, mask: np.ndarray, classes: np.ndarray) -> float | None:
    recalls = [float((pred[mask & (y == c)] == c).mean()) for c in classes if (mask & (y == c)).any()]
    return float(np.mean(recalls)) if recalls else None


def check_row(pred: np.ndarray, estimate: Any, y: np.ndarray, revealed: np.ndarray) -> dict[str, Any]:
    """The estimate shown for these labels beside the truth on the unrevealed images."""
    unrevealed = y >= 0
    unrevealed[revealed] = False
    seen = np.unique(y[revealed])
    true_balanced = _recall_mean(pred, y, unrevealed, seen)
    in_seen = unrevealed & np.isin(y, seen)
    true_pooled = float((pred[in_seen] == y[in_seen]).mean()) if in_seen.any() else None
    row: dict[str, Any] = {"labels": int(len(revealed)), "classes_labelled": int(len(seen)),
                           "true_balanced": _round(true_balanced),
                           "true_balanced_all": _round(_recall_mean(pred, y, unrevealed, np.unique(y[y >= 0]))),
                           "true_pooled": _round(true_pooled)}
    if estimate is None or estimate.mean is None:
        return {**row, "estimate": None, "covered": None, "pooled_covered": None}
    per_class = estimate.per_class
    return {**row, "estimate": _round(estimate.mean), "low": _round(estimate.low), "high": _round(estimate.high),
            "covered": _inside(true_balanced, estimate.low, estimate.high),
            "pooled": _round(estimate.pooled), "pooled_low": _round(estimate.pooled_low),
            "pooled_high": _round(estimate.pooled_high),
            "pooled_covered": _inside(true_pooled, estimate.pooled_low, estimate.pooled_high),
            "scheme": estimate.scheme, "unbalanced": estimate.unbalanced,
            "cv_tested": [int(r["tested"]) for r in per_class],
            "cv_correct": [int(round(r["recall"] * r["tested"])) for r in per_class]}


def _inside(value: float | None, low: float, high: float) -> bool | None:
    return None if value is None else bool(low - 1e-9 <= value <= high + 1e-9)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Coverage over every run with an estimate, beside the old pooled interval's."""
    scored = [r for r in rows if r.get("covered") is not None]
    covered = sum(bool(r["covered"]) for r in scored)
    pooled = [r for r in rows if r.get("pooled_covered") is not None]
    return {"interval": INTERVAL, "goal": GOAL, "runs": len(scored), "covered": covered,
            "rate": round(covered / len(scored), 4) if scored else None,
            "without_estimate": len(rows) - len(scored),
            "pooled_rate": round(sum(bool(r["pooled_covered"]) for r in pooled) / len(pooled), 4) if pooled else None,
            "below": sum(r["true_balanced"] < r["low"] for r in scored),
            "above": sum(r["true_balanced"] > r["high"] for r in scored)}


def row_fields(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Fields added to a results row (one strategy and budget, over its seeds)."""
    scored = [c for c in checks if c.get("covered") is not None]
    balanced = [c["true_balanced"] for c in checks if c.get("true_balanced") is not None]
    out: dict[str, Any] = {"balanced_accuracy": round(float(np.mean(balanced)), 4) if balanced else None}
    if scored:
        out.update({"estimate": round(float(np.mean([c["estimate"] for c in scored])), 4),
                    "coverage": round(sum(bool(c["covered"]) for c in scored) / len(scored), 4)})
    return out
