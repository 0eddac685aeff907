"""BADGE (Ash et al., 2020): k-means++ on gradient embeddings, uncertainty and diversity in one step.

Runs scikit-activeml's `Badge`. The model is whatever produced `probs` (the app's probe, with label
propagation), served to Badge by a small adapter that looks rows up by index; the per-class gradient
embedding uses the image embeddings reduced to `dims` components, and large pools are subsampled
to `max_rows` candidates so the (rows x classes x dims) matrix stays small.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sslapp.select.base import Strategy, Suggestion, quiet, reduce_dims, subsample, top_two, y_with_missing


def _row_lookup_classifier(probs: np.ndarray, embeddings: np.ndarray, n_classes: int):
    """A fitted scikit-activeml classifier whose input is a column of row numbers."""
    from skactiveml.base import SkactivemlClassifier

    class RowLookup(SkactivemlClassifier):
        def __init__(self, classes=None, missing_label=np.nan):
            super().__init__(classes=classes, missing_label=missing_label)

        def fit(self, X, y, sample_weight=None):
            return self

        def predict_proba(self, X, return_embeddings=False):
            rows = np.asarray(X)[:, 0].astype(np.int64)
            p = probs[rows]
            return (p, embeddings[rows]) if return_embeddings else p

    return RowLookup(classes=np.arange(n_classes))


class BadgeStrategy(Strategy):
    name = "badge"
    needs_probs = True
    needs_labels = True

    def __init__(self, seed: int = 0, dims: int = 64, max_rows: int = 4000):
        super().__init__(seed)
        self.dims = dims
        self.max_rows = max_rows

    def query(self, features, labeled_idx, labels, budget, *, candidates, probs=None,
              class_names: Sequence[str] | None = None) -> list[Suggestion]:
        from skactiveml.pool import Badge

        pool = subsample(candidates, max(self.max_rows, int(budget)), self.seed)
        labeled_idx = np.asarray(labeled_idx, dtype=np.int64)
        rows = np.concatenate([labeled_idx, pool])
        emb = reduce_dims(features[rows], self.dims, self.seed)
        p = np.asarray(probs, dtype=np.float64)[rows]
        clf = _row_lookup_classifier(p, emb, p.shape[1])
        X = np.arange(len(rows), dtype=np.float64)[:, None]
        y = y_with_missing(len(rows), np.arange(len(labeled_idx)), labels)
        with quiet():
            picks = Badge(clf_embedding_flag_name="return_embeddings", random_state=self.seed).query(
                X, y, clf=clf, fit_clf=False, candidates=np.arange(len(labeled_idx), len(rows)),
                batch_size=int(budget))
        out = []
        for local in np.asarray(picks, dtype=np.int64):
            i = int(rows[local])
            out.append(Suggestion(i, f"model unsure ({top_two(probs[i], class_names)}) and unlike the other picks",
                                  float(1 - p[local].max())))
        return out
