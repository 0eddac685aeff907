"""A linear probe on frozen embeddings: the classifier that works from the first few labels.

Features are L2-normalised before logistic regression, so the probe sees directions (what SSL
embeddings encode) rather than norms; `Classifier(normalize=True)` applies the same step, so the
exported model reproduces the probe's probabilities exactly.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from sslapp.vectors import l2_normalize

# Bias given to classes that have no training labels: their softmax probability is exactly 0.
ABSENT_CLASS_BIAS = -1e4


class LinearProbe:
    """Logistic regression on L2-normalised features with balanced class weights.

    `n_classes` fixes the output width: classes 0..n_classes-1 as given, so a class without
    labels (or with all its labels held out in a CV fold) still gets a column, of zeros.
    """

    def __init__(self, n_classes: int | None = None, C: float = 10.0, max_iter: int = 2000, seed: int = 0):
        self.n_classes = n_classes
        self.C = C
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None) -> LinearProbe:
        X = l2_normalize(features)
        y = np.asarray(labels, dtype=np.int64)
        if len(y) == 0:
            raise ValueError("The linear probe needs at least one labelled example.")
        n_classes = int(self.n_classes if self.n_classes is not None else y.max() + 1)
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"labels must lie in 0..{n_classes - 1}")
        present = np.unique(y)
        W = np.zeros((n_classes, X.shape[1]))
        b = np.full(n_classes, ABSENT_CLASS_BIAS)
        if len(present) == 1:  # one class: it is the only possible answer
            b[present[0]] = 0.0
        else:
            lr = LogisticRegression(C=self.C, class_weight="balanced", max_iter=self.max_iter,
                                    random_state=self.seed)
            lr.fit(X, y, sample_weight=sample_weight)
            if len(present) == 2:  # sklearn's binary form: p1 = sigmoid(w.x + b) == softmax([0, w.x + b])
                W[present[0]], b[present[0]] = 0.0, 0.0
                W[present[1]], b[present[1]] = lr.coef_[0], lr.intercept_[0]
            else:
                W[present], b[present] = lr.coef_, lr.intercept_
        self.coef_, self.intercept_, self.classes_present_ = W, b, present
        self.n_classes_ = n_classes
        return self

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        return l2_normalize(features) @ self.coef_.T + self.intercept_

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        z = self.decision_function(features)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.predict_proba(features).argmax(axis=1)
