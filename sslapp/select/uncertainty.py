"""Shared ranking for the uncertainty strategies: scikit-activeml's `uncertainty_scores` on the model's
probabilities, highest first, ties broken at random (seeded) so equal scores do not favour low ids."""

from __future__ import annotations

import numpy as np


def uncertainty_ranking(probs: np.ndarray, candidates: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidates sorted from most to least uncertain, and their scores (higher = less sure)."""
    from skactiveml.pool import uncertainty_scores

    candidates = np.asarray(candidates, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)[candidates]
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    scores = uncertainty_scores(p, method=method)
    tiebreak = np.random.default_rng(seed).random(len(candidates))
    order = np.lexsort((tiebreak, -scores))
    return candidates[order], scores[order]
