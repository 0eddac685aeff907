"""What every selection strategy shares: the Suggestion record, the strategy interface and helpers.

A strategy sees L2-normalised embeddings (cosine geometry, as TypiClust and ProbCover assume),
the indices and class indices of the labelled rows, and the candidate rows it may pick from
(unlabelled and not skipped). It returns at most `budget` distinct candidates, each with the
reason a person sees in the Label page.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from sslapp.vectors import l2_normalize

MISSING = np.nan


@dataclass(frozen=True)
class Suggestion:
    """One proposed image: its row in the feature matrix, why it was picked, and the strategy's score."""

    index: int
    reason: str
    score: float = float("nan")


@dataclass
class Selection:
    """What `sslapp.select.select` returns: the picks, the strategy that made them, and notes for the user."""

    suggestions: list[Suggestion]
    strategy: str
    notes: list[str] = field(default_factory=list)

    @property
    def indices(self) -> list[int]:
        return [s.index for s in self.suggestions]


class Strategy:
    """Base class: `query(...)` returns up to `budget` Suggestions drawn from `candidates`."""

    name = "base"
    needs_probs = False  # True: `probs` (N, C) from the current model must be given
    needs_labels = False  # True: needs labels of at least two classes
    noun, plural = "item", "items"  # what a reason calls the rows ("image", "images"): `select` sets them

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def query(self, features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, budget: int, *,
              candidates: np.ndarray, probs: np.ndarray | None = None,
              class_names: Sequence[str] | None = None) -> list[Suggestion]:
        raise NotImplementedError


def y_with_missing(n: int, labeled_idx: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """scikit-activeml's label vector: class index for labelled rows, NaN elsewhere."""
    y = np.full(n, MISSING, dtype=float)
    y[np.asarray(labeled_idx, dtype=np.int64)] = np.asarray(labels, dtype=float)
    return y


def normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); zero rows stay zero."""
    return l2_normalize(features, dtype=np.float32)


def reduce_dims(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """PCA to at most `dims` components, to keep per-class gradient embeddings small in memory."""
    if x.shape[1] <= dims or x.shape[0] <= dims:
        return x
    from sklearn.decomposition import PCA

    return PCA(n_components=dims, random_state=seed).fit_transform(x).astype(np.float32)


def class_name(class_names: Sequence[str] | None, c: int) -> str:
    if class_names is not None and 0 <= c < len(class_names):
        return str(class_names[c])
    return f"class {c}"


def top_two(probs_row: np.ndarray, class_names: Sequence[str] | None) -> str:
    """'0.41 cat vs 0.39 dog' for one row of class probabilities."""
    order = np.argsort(probs_row)[::-1]
    first = order[0]
    if len(order) < 2:
        return f"{probs_row[first]:.2f} {class_name(class_names, int(first))}"
    second = order[1]
    return (f"{probs_row[first]:.2f} {class_name(class_names, int(first))} vs "
            f"{probs_row[second]:.2f} {class_name(class_names, int(second))}")


def subsample(rows: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most `limit` of `rows`, chosen at random (seeded), in their original order."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) <= limit:
        return rows
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=limit, replace=False))


@contextmanager
def quiet():
    """Silence the convergence and purity warnings scikit-learn/scikit-activeml print on tiny pools."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
