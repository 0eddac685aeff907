"""Which embedding to use, by measurement on the user's own labels (arrays in, a Choice out).

Once at least two classes have two labels or more, each candidate is scored by the leave-one-out
accuracy of a nearest-class-mean classifier on the labelled images (cosine geometry, as every
consumer uses): it is stable with a handful of labels, costs milliseconds and needs no training.
Before that there is nothing to measure, so a prior measured on the shared datasets decides
(docs/benchmarks.md, "Choosing the embedding"): the ImageNet start on colour photos, the patch
dictionary on grayscale images, and a pretraining run only once labels show it is better.
A candidate must beat the prior's pick by more than one labelled image's worth to replace it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MIN_PER_CLASS = 2


@dataclass
class Choice:
    """The index of the chosen candidate, why, and each candidate's score (None: not measurable)."""

    index: int
    reason: str
    scores: list[float | None] = field(default_factory=list)
    n_scored: int = 0  # labelled images the scores are measured on


def loo_centroid_accuracy(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray) -> float | None:
    """Leave-one-out accuracy of nearest-class-mean on L2-normalised features of the labelled rows;
    None when fewer than two classes have MIN_PER_CLASS labels. Classes with one label are left out."""
    labels = np.asarray(labels, np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    keep_classes = classes[counts >= MIN_PER_CLASS]
    if len(keep_classes) < 2:
        return None
    mask = np.isin(labels, keep_classes)
    x = np.asarray(features, np.float64)[np.asarray(labeled_idx, np.int64)[mask]]
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    y = np.searchsorted(keep_classes, labels[mask])
    k = len(keep_classes)
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, y, x)
    counts_k = np.bincount(y, minlength=k).astype(np.float64)
    # each row's own class mean without that row; the others' means unchanged
    sims = np.empty((len(x), k))
    for c in range(k):
        centre = np.broadcast_to(sums[c], x.shape).copy()
        n = np.full(len(x), counts_k[c])
        own = y == c
        centre[own] -= x[own]
        n[own] -= 1
        centre /= np.maximum(n, 1)[:, None]
        centre /= np.maximum(np.linalg.norm(centre, axis=1, keepdims=True), 1e-12)
        sims[:, c] = (x * centre).sum(axis=1)
    return float((sims.argmax(axis=1) == y).mean())


def choose(candidates: Sequence[np.ndarray], labeled_idx: np.ndarray, labels: np.ndarray, prior: int,
           names: Sequence[str] | None = None) -> Choice:
    """Pick among feature matrices (rows aligned): by measured accuracy when labels allow, else `prior`."""
    names = list(names) if names is not None else [f"candidate {i}" for i in range(len(candidates))]
    scores = [loo_centroid_accuracy(f, labeled_idx, labels) for f in candidates]
    measured = [i for i, s in enumerate(scores) if s is not None]
    n_scored = int(np.isin(labels, np.unique(labels)[np.bincount(labels)[np.unique(labels)] >= MIN_PER_CLASS]).sum()) \
        if len(labels) else 0
    if not measured:
        return Choice(prior, f"no class has {MIN_PER_CLASS} labels yet, so nothing can be measured: "
                             f"{names[prior]}, the measured best start for images like these", scores, 0)
    best = max(measured, key=lambda i: scores[i])
    margin = 1.0 / max(n_scored, 1)
    base = scores[prior]
    if base is not None and scores[best] - base <= margin:
        best = prior
    ranked = ", ".join(f"{names[i]} {scores[i]:.0%}" for i in sorted(measured, key=lambda i: -scores[i]))
    return Choice(best, f"best on your {n_scored} labels (nearest-class-mean, leave-one-out): {ranked}",
                  scores, n_scored)


def prior_index(starts: Sequence[str | None], grayscale: bool) -> int:
    """The candidate to use before labels can measure: ImageNet on colour photos, patches on grayscale."""
    order = ("patches", "imagenet") if grayscale else ("imagenet", "patches")
    for want in order:
        if want in starts:
            return list(starts).index(want)
    return len(starts) - 1  # only pretraining runs: the newest


def is_grayscale(images: np.ndarray, sample: int = 256, seed: int = 0) -> bool:
    """Whether (almost) every pixel of a sample of uint8 (N, S, S, 3) images has R == G == B."""
    n = len(images)
    if n == 0:
        return False
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, sample), replace=False))
    x = np.asarray(images[rows]).astype(np.int16)
    if x.shape[-1] == 1:
        return True
    spread = np.abs(x[..., 0] - x[..., 1]) + np.abs(x[..., 1] - x[..., 2])
    return float((spread > 6).mean()) < 0.01
