"""Core-set (Sener and Savarese, 2018): farthest-first traversal from the labelled set.

Pure diversity: each pick is the candidate farthest from every labelled or already picked image.
Runs scikit-activeml's `CoreSet`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sslapp.select.base import Strategy, Suggestion, quiet, y_with_missing


class CoreSetStrategy(Strategy):
    name = "coreset"

    def query(self, features, labeled_idx, labels, budget, *, candidates, probs=None,
              class_names: Sequence[str] | None = None) -> list[Suggestion]:
        from skactiveml.pool import CoreSet

        y = y_with_missing(len(features), labeled_idx, labels)
        with quiet():
            picks, utilities = CoreSet(random_state=self.seed).query(
                features, y, candidates=candidates, batch_size=int(budget), return_utilities=True)
        out = []
        for i, idx in enumerate(np.asarray(picks, dtype=np.int64)):
            d = float(utilities[i, idx])
            if i == 0 and len(labeled_idx) == 0:
                reason = "first pick of a spread-out set (nothing labelled yet)"
            else:
                reason = f"farthest from the labelled set (distance {d:.2f})"
            out.append(Suggestion(int(idx), reason, d))
        return out
