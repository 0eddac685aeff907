"""ProbCover (Yehuda et al., 2022): pick the image whose neighbourhood covers the most uncovered images.

Like TypiClust, a low-budget strategy. scikit-activeml's `ProbCover` keeps an N x N distance
matrix, so on large pools it runs on a seeded random subset (all labelled rows plus up to
`max_rows` candidates); coverage is then estimated on that subset.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sslapp.select.base import Strategy, Suggestion, quiet, subsample, y_with_missing


class ProbCoverStrategy(Strategy):
    name = "probcover"

    def __init__(self, seed: int = 0, max_rows: int = 3000, alpha: float = 0.95):
        super().__init__(seed)
        self.max_rows = max_rows
        self.alpha = alpha

    def query(self, features, labeled_idx, labels, budget, *, candidates, probs=None,
              class_names: Sequence[str] | None = None) -> list[Suggestion]:
        from skactiveml.pool import ProbCover

        labeled_idx = np.asarray(labeled_idx, dtype=np.int64)
        pool = subsample(candidates, max(self.max_rows - len(labeled_idx), int(budget)), self.seed)
        rows = np.concatenate([labeled_idx, pool])
        X = features[rows]
        y = y_with_missing(len(rows), np.arange(len(labeled_idx)), labels)
        local_candidates = np.arange(len(labeled_idx), len(rows))
        n_classes = max(len(np.unique(labels)), 2)
        strategy = ProbCover(n_classes=n_classes, alpha=self.alpha, random_state=self.seed,
                             cluster_algo_dict={"n_init": 1})
        with quiet():
            picks, utilities = strategy.query(X, y, candidates=local_candidates, batch_size=int(budget),
                                              return_utilities=True)
        delta = float(strategy.delta_max_)
        scale = len(candidates) / max(len(pool), 1)
        out = []
        for i, local in enumerate(np.asarray(picks, dtype=np.int64)):
            covered = float(utilities[i, local])
            if covered <= 1:
                reason = f"covering pick: its neighbourhood (radius {delta:.1f}) is already covered"
            else:
                approx = "" if scale == 1 else "about "
                reason = (f"covers {approx}{int(round(covered * scale))} unlabelled {self.plural} within "
                          f"radius {delta:.1f}")
            out.append(Suggestion(int(rows[local]), reason, covered))
        return out
