"""Margin sampling: the images where the model's top two classes are closest.

Strong once every class has enough labels for the model to be roughly right; with only a few labels
it piles picks onto one confused boundary, which is why `auto` starts with typical picks.
"""

from __future__ import annotations

from collections.abc import Sequence

from sslapp.select.base import Strategy, Suggestion, top_two
from sslapp.select.uncertainty import uncertainty_ranking


class MarginStrategy(Strategy):
    name = "margin"
    needs_probs = True
    needs_labels = True

    def query(self, features, labeled_idx, labels, budget, *, candidates, probs=None,
              class_names: Sequence[str] | None = None) -> list[Suggestion]:
        ranked, scores = uncertainty_ranking(probs, candidates, "margin_sampling", self.seed)
        return [Suggestion(int(i), f"model unsure: {top_two(probs[i], class_names)}", float(s))
                for i, s in zip(ranked[:budget], scores[:budget], strict=True)]
