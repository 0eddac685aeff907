"""The per-epoch representation probe: is the encoder collapsing, and does kNN on labels improve?

Collapse detection follows the usual SSL health check (as in lightly's docs and SimSiam): the
per-dimension std of L2-normalised embeddings is about 1/sqrt(D) for well-spread features and
goes to 0 when every image maps to the same point. We report the mean std and its ratio to
1/sqrt(D) so the number means the same for a 512-d ResNet-18 and a 2048-d ResNet-50.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

PROBE_SIZE = 1000
COLLAPSE_RATIO = 0.05  # std below 5% of the uniform 1/sqrt(D): the features have collapsed
KNN_K = 20


@dataclass
class ProbeSample:
    """A fixed sample of cache rows to embed each epoch, and labels where the user gave any."""

    rows: np.ndarray  # cache indices
    labels: np.ndarray  # class index per row, -1 when unlabelled


def choose_probe_sample(cache_rows: np.ndarray, labelled: dict[int, int], size: int = PROBE_SIZE,
                        seed: int = 0) -> ProbeSample:
    """Every labelled row first (up to `size`), then random unlabelled rows, fixed for the run.

    `cache_rows` are the rows training uses; `labelled` maps cache row -> class id.
    """
    rng = np.random.default_rng(seed)
    rows = np.asarray(cache_rows, dtype=np.int64)
    is_lab = np.array([r in labelled for r in rows.tolist()], dtype=bool)
    lab_rows = rows[is_lab]
    if len(lab_rows) > size:
        lab_rows = rng.choice(lab_rows, size, replace=False)
    rest = rows[~is_lab]
    n_rest = min(len(rest), size - len(lab_rows))
    extra = rng.choice(rest, n_rest, replace=False) if n_rest > 0 else rest[:0]
    chosen = np.concatenate([lab_rows, extra]).astype(np.int64)
    labels = np.array([labelled.get(int(r), -1) for r in chosen], dtype=np.int64)
    return ProbeSample(rows=chosen, labels=labels)


@torch.no_grad()
def embed_uint8(encoder: torch.nn.Module, images: np.ndarray, device: torch.device, train_size: int,
                mean: torch.Tensor, std: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Embed (N, S, S, 3) uint8 images (or (N, M, T) log-mel pictures) exactly as sslapp's Encoder does (resize, normalise)."""
    from sslapp.ssl.augment import as_rgb_rows  # here: augment pulls in the image networks, texts need none

    out = []
    was_training = encoder.training
    encoder.eval()
    try:
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
            x = as_rgb_rows(x).permute(0, 3, 1, 2).float().div_(255)
            if x.shape[-1] != train_size:
                x = F.interpolate(x, size=(train_size, train_size), mode="bilinear", align_corners=False)
            x = (x - mean.to(device)) / std.to(device)
            feats = encoder(x)
            out.append(feats.float().flatten(1).cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0)


def collapse_std(features: torch.Tensor) -> tuple[float, float]:
    """(mean per-dimension std of L2-normalised features, that std times sqrt(D))."""
    z = F.normalize(features.float(), dim=1)
    std = float(z.std(dim=0).mean()) if len(z) > 1 else 0.0
    return std, std * math.sqrt(z.shape[1])


def knn_accuracy(features: torch.Tensor, labels: np.ndarray, k: int = KNN_K, folds: int = 5,
                 seed: int = 0) -> float | None:
    """k-fold kNN accuracy (cosine, similarity-weighted votes as in InstDisc/DINO); None if too few labels.

    Needs at least 2 classes and 2 items per fold; with fewer than 5*folds labels it uses leave-one-out.
    """
    labels = np.asarray(labels)
    mask = labels >= 0
    if mask.sum() < 4 or len(np.unique(labels[mask])) < 2:
        return None
    z = F.normalize(features[torch.from_numpy(mask)].float(), dim=1)
    y = torch.from_numpy(labels[mask])
    n = len(y)
    classes = int(y.max()) + 1
    sim = z @ z.T
    sim.fill_diagonal_(-float("inf"))  # never vote for yourself
    if n >= 5 * folds:
        fold = torch.from_numpy(np.random.default_rng(seed).permutation(n) % folds)
        same_fold = fold[:, None] == fold[None, :]
        sim = sim.masked_fill(same_fold, -float("inf"))
    kk = min(k, n - 1 if n < 5 * folds else n - n // folds - 1)
    top_sim, top_idx = sim.topk(kk, dim=1)
    weights = (top_sim / 0.07).exp()
    votes = torch.zeros(n, classes).scatter_add_(1, y[top_idx], weights)
    return float((votes.argmax(1) == y).float().mean())


@dataclass
class ProbeResult:
    std: float
    std_ratio: float
    collapsed: bool
    knn_acc: float | None
    n_items: int
    n_labelled: int

    def metrics(self) -> dict[str, float]:
        out = {"probe_std": self.std, "probe_std_ratio": self.std_ratio, "probe_collapsed": float(self.collapsed)}
        if self.knn_acc is not None:
            out["probe_knn_acc"] = self.knn_acc
        return out

    def summary(self) -> dict[str, object]:
        """What a run keeps of the check (progress, encoder meta, summary)."""
        return {"std": self.std, "std_ratio": self.std_ratio, "collapsed": self.collapsed, "knn_acc": self.knn_acc,
                "n_items": self.n_items, "n_labelled": self.n_labelled}

    def message(self, items: str = "images") -> str:
        text = f"check after this epoch: feature spread {self.std_ratio:.2f} (1 = evenly spread, 0 = collapsed)"
        if self.knn_acc is not None:
            text += f", nearest-neighbour accuracy {self.knn_acc:.0%} on your {self.n_labelled} labelled {items}"
        else:
            text += f"; label a few {items} to see how well these features tell your classes apart"
        if self.collapsed:
            text += (f" — WARNING: the representation has collapsed (all {items} map to nearly the same "
                     "point); lower the learning rate, use a larger batch or another method")
        return text


def run_probe(encoder: torch.nn.Module, images: np.ndarray, sample: ProbeSample, device: torch.device,
              train_size: int, mean: torch.Tensor, std: torch.Tensor) -> ProbeResult:
    return probe_features(embed_uint8(encoder, images[sample.rows], device, train_size, mean, std), sample.labels)


def probe_features(features: torch.Tensor, labels: np.ndarray) -> ProbeResult:
    """The check on features already computed (any kind of item): spread, collapse, kNN on the labels (-1: none)."""
    s, ratio = collapse_std(features)
    return ProbeResult(std=s, std_ratio=ratio, collapsed=ratio < COLLAPSE_RATIO, knn_acc=knn_accuracy(features, labels),
                       n_items=len(labels), n_labelled=int((np.asarray(labels) >= 0).sum()))
