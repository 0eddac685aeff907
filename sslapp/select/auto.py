"""`auto`: typical picks while labels are scarce, then uncertainty blended with diversity.

Low budgets favour typical/covering picks and high budgets favour uncertainty (Hacohen et al.,
2022, "Active learning on a budget"). Where the switch pays off was measured on our own embeddings,
not guessed: see "Active-learning suggestions and label efficiency" in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sslapp.select.base import Strategy, Suggestion, quiet, top_two
from sslapp.select.typiclust import TypiClustStrategy
from sslapp.select.uncertainty import uncertainty_ranking

# Switch from typical picks to uncertainty x diversity at this many labels per class
# (measured, docs/benchmarks.md).
SWITCH_LABELS_PER_CLASS = 5.0
# Uncertainty x diversity: the `POOL_FACTOR x budget` least sure candidates, clustered into
# `budget` groups, the least sure of each group.
POOL_FACTOR = 10


def margin_diverse(features: np.ndarray, probs: np.ndarray, candidates: np.ndarray, budget: int, seed: int,
                   class_names: Sequence[str] | None, pool_factor: int = POOL_FACTOR) -> list[Suggestion]:
    """Margin top-(pool_factor x budget), then one pick per k-means group among them."""
    from sklearn.cluster import KMeans

    ranked, scores = uncertainty_ranking(probs, candidates, "margin_sampling", seed)
    n = min(len(ranked), max(budget, pool_factor * budget))
    top, top_scores = ranked[:n], scores[:n]
    if n <= budget:
        chosen = np.arange(n)
    else:
        with quiet():
            groups = KMeans(n_clusters=budget, n_init=1, random_state=seed).fit_predict(features[top])
        chosen = []
        for g in range(budget):
            members = np.flatnonzero(groups == g)
            if len(members):
                chosen.append(int(members[np.argmax(top_scores[members])]))
        taken = set(chosen)
        chosen += [j for j in range(n) if j not in taken][:budget - len(chosen)]  # empty groups
        chosen = np.array(sorted(chosen, key=lambda j: -top_scores[j]))
    return [Suggestion(int(top[j]), f"model unsure: {top_two(probs[top[j]], class_names)}; "
                                    "unlike the other uncertain picks", float(top_scores[j]))
            for j in chosen]


class AutoStrategy(Strategy):
    name = "auto"

    def __init__(self, seed: int = 0, switch: float = SWITCH_LABELS_PER_CLASS, late: str = "margin-diverse"):
        super().__init__(seed)
        self.switch = float(switch)
        self.late = late

    def phase(self, labels: np.ndarray, n_classes: int | None = None) -> str:
        """'typical' or 'uncertain' for the current labels."""
        labels = np.asarray(labels)
        seen = len(np.unique(labels))
        if seen < 2:
            return "typical"
        per_class = len(labels) / max(seen, int(n_classes or 0))
        return "uncertain" if per_class >= self.switch else "typical"

    def query(self, features, labeled_idx, labels, budget, *, candidates, probs=None,
              class_names: Sequence[str] | None = None, n_classes: int | None = None) -> list[Suggestion]:
        if probs is None or self.phase(labels, n_classes) == "typical":
            typical = TypiClustStrategy(self.seed)
            typical.noun, typical.plural = self.noun, self.plural
            return typical.query(features, labeled_idx, labels, budget, candidates=candidates)
        if self.late == "badge":
            from sslapp.select.badge import BadgeStrategy

            return BadgeStrategy(self.seed).query(features, labeled_idx, labels, budget, candidates=candidates,
                                                  probs=probs, class_names=class_names)
        return margin_diverse(features, probs, candidates, budget, self.seed, class_names)
