"""Active-learning suggestions: which images the user should label next, and why.

`select(strategy, features, labeled_idx, labels, budget, ...)` is the one entry point; strategies
live one per file and are listed in `sslapp.select.registry.STRATEGIES`. Items already labelled or in `exclude` (skipped)
are never suggested.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sslapp.select.base import Selection, Strategy, Suggestion, normalise
from sslapp.select.registry import NO_MODEL_FALLBACK, STRATEGIES

__all__ = ["STRATEGIES", "Selection", "Strategy", "Suggestion", "fit_probs", "select"]


def fit_probs(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, n_classes: int | None = None,
              seed: int = 0) -> np.ndarray:
    """Class probabilities for every row from the app's own probe (label propagation + linear probe)."""
    from sslapp.estimators.api import train_on_embeddings

    return train_on_embeddings(features, labeled_idx, labels, propagate="auto", seed=seed, n_classes=n_classes)


def select(strategy: str, features: np.ndarray, labeled_idx: Sequence[int], labels: Sequence[int], budget: int, *,
           probs: np.ndarray | None = None, exclude: Sequence[int] = (), class_names: Sequence[str] | None = None,
           n_classes: int | None = None, seed: int = 0,
           probs_fn: Callable[..., np.ndarray] | None = None, options: dict | None = None,
           nouns: tuple[str, str] = ("item", "items")) -> Selection:
    """Up to `budget` distinct rows of `features` to label next, each with a reason.

    labels are class indices 0..C-1 aligned with `labeled_idx`; `probs` (N, C) are the current model's
    probabilities, computed with `probs_fn` (default: `fit_probs`) when a strategy needs them and none
    are given. `options` go to the strategy's constructor (e.g. {"switch": 5} for auto). A budget larger
    than the pool returns the whole pool with a note. `nouns` (one, many) name the rows in reasons and notes.
    """
    entry = STRATEGIES.get_entry(strategy)
    if int(budget) < 1:
        raise ValueError(f"budget must be at least 1 (got {budget})")
    x = normalise(features)
    n = len(x)
    labeled_idx = np.asarray(labeled_idx, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labeled_idx) != len(labels):
        raise ValueError("labeled_idx and labels must have the same length")
    if len(labeled_idx) and (labeled_idx.min() < 0 or labeled_idx.max() >= n):
        raise ValueError("labeled_idx holds rows outside the feature matrix")
    blocked = np.zeros(n, dtype=bool)
    blocked[labeled_idx] = True
    excl = np.asarray(list(exclude), dtype=np.int64)
    blocked[excl[(excl >= 0) & (excl < n)]] = True
    candidates = np.flatnonzero(~blocked)
    notes: list[str] = []
    if len(candidates) == 0:
        notes.append(f"Nothing left to suggest: every {nouns[0]} is labelled or skipped.")
        return Selection([], strategy, notes)
    budget = int(budget)
    if budget > len(candidates):
        notes.append(f"Asked for {budget} suggestions but only {len(candidates)} {nouns[1]} are unlabelled and not "
                     f"skipped; suggesting all {len(candidates)}.")
        budget = len(candidates)

    used = strategy
    impl = entry.load()(seed=seed, **{**entry.defaults, **(options or {})})
    impl.noun, impl.plural = nouns
    is_auto = strategy == "auto"
    n_seen = len(np.unique(labels))
    wants_model = impl.needs_probs or (is_auto and impl.phase(labels, n_classes) != "typical")
    if wants_model and n_seen < 2:
        if impl.needs_probs:
            notes.append(f"'{strategy}' needs a model, which needs labels from at least 2 classes "
                         f"(have {n_seen}); used '{NO_MODEL_FALLBACK}' picks instead.")
            used = NO_MODEL_FALLBACK
            fallback = STRATEGIES[NO_MODEL_FALLBACK]
            impl = fallback.load()(seed=seed, **fallback.defaults)
            impl.noun, impl.plural = nouns
        wants_model = False
    if wants_model and probs is None:
        probs = (probs_fn or fit_probs)(features, labeled_idx, labels, n_classes=n_classes, seed=seed)
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape[0] != n:
            raise ValueError(f"probs has {probs.shape[0]} rows but features has {n}")

    kwargs = {"n_classes": n_classes} if is_auto else {}
    picks = impl.query(x, labeled_idx, labels, budget, candidates=candidates, probs=probs,
                       class_names=class_names, **kwargs)
    return Selection(_distinct_topped_up(picks, candidates, budget, seed), used, notes)


def _distinct_topped_up(picks: list[Suggestion], candidates: np.ndarray, budget: int, seed: int) -> list[Suggestion]:
    """Drop repeats and anything outside the candidates; fill a short list with random candidates."""
    allowed = set(candidates.tolist())
    out, seen = [], set()
    for s in picks:
        if s.index in allowed and s.index not in seen:
            out.append(s)
            seen.add(s.index)
    if len(out) < budget:
        rest = np.array([c for c in candidates if c not in seen])
        rng = np.random.default_rng(seed)
        for i in rng.permutation(rest)[:budget - len(out)]:
            out.append(Suggestion(int(i), "random pick (to fill the batch)"))
    return out[:budget]
