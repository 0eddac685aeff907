"""Entropy sampling: the images whose predicted class distribution is the most spread out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sslapp.select.base import Strategy, Suggestion, top_two
from sslapp.select.uncertainty import uncertainty_ranking


class EntropyStrategy(Strategy):
    name = "entropy"
    needs_probs = True
    needs_labels = True

    def query(self, features, labeled_idx, labels, budget, *, candidates, probs=None,
              class_names: Sequence[str] | None = None) -> list[Suggestion]:
        ranked, scores = uncertainty_ranking(probs, candidates, "entropy", self.seed)
        top = np.log(probs.shape[1])
        return [Suggestion(int(i), f"model unsure: entropy {s:.2f} of {top:.2f} max; {top_two(probs[i], class_names)}",
                           float(s))
                for i, s in zip(ranked[:budget], scores[:budget], strict=True)]
