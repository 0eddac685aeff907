"""Random picks: the baseline every other strategy must beat. Runs scikit-activeml's `RandomSampling`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sslapp.select.base import Strategy, Suggestion, quiet, y_with_missing


class RandomStrategy(Strategy):
    name = "random"

    def query(self, features, labeled_idx, labels, budget, *, candidates, probs=None,
              class_names: Sequence[str] | None = None) -> list[Suggestion]:
        from skactiveml.pool import RandomSampling

        y = y_with_missing(len(features), labeled_idx, labels)
        with quiet():
            picks = RandomSampling(random_state=self.seed).query(
                features, y, candidates=candidates, batch_size=int(budget))
        return [Suggestion(int(i), "random pick") for i in np.asarray(picks, dtype=np.int64)]
