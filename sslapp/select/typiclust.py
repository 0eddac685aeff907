"""TypiClust (Hacohen et al., 2022): the most typical image of each cluster no label covers yet.

Best with very few labels: it spreads picks over the data's modes and avoids outliers.
Runs scikit-activeml's `TypiClust`; a KMeans subclass records the cluster of each row so the
reason can name it. From UMAP_MIN_ITEMS images on, it clusters a 10-d UMAP of the features
instead of the features themselves: at 1 pick per class that covered 8.7 of cifar10's 10 classes
(8.0 before) and 9.0 of mnist's (6.3), for 0.476 and 0.791 accuracy (0.461 and 0.599;
docs/benchmarks.md, "Cold-start picks").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans

from sslapp.select.base import Strategy, Suggestion, quiet, y_with_missing


def _recording_kmeans(record: dict):
    class RecordingKMeans(KMeans):
        def fit_predict(self, X, y=None, sample_weight=None):
            labels = super().fit_predict(X, y, sample_weight=sample_weight)
            record["labels"] = labels
            return labels

    return RecordingKMeans


UMAP_MIN_ITEMS = 200
UMAP_DIMS = 10
MAX_ITEMS = 10_000  # larger pools: TypiClust runs on the labelled rows and a sample of the rest


def cluster_space(features: np.ndarray, seed: int) -> np.ndarray:
    """Where clusters follow the data's kinds best: a 10-d UMAP (cosine) for sets of UMAP_MIN_ITEMS or
    more, the features themselves for smaller ones."""
    if len(features) < UMAP_MIN_ITEMS:
        return features
    from sslapp.numba_cache import import_umap

    umap = import_umap()

    with quiet():
        return umap.UMAP(n_components=UMAP_DIMS, n_neighbors=15, min_dist=0.0, metric="cosine",
                         random_state=seed).fit_transform(features).astype(np.float32)


def warm_up() -> None:
    """Compile `cluster_space`'s numba code into its disk cache (or load it from there). The map's warm-up
    leaves it cold: the map passes exact neighbours in, while this UMAP searches its own (cosine), and
    compiling that search took 5.5 CPU-seconds at the first suggestions after an install."""
    x = np.random.default_rng(0).normal(size=(UMAP_MIN_ITEMS, 8)).astype(np.float32)
    x[: UMAP_MIN_ITEMS // 2] += 4.0
    cluster_space(x, seed=0)


class TypiClustStrategy(Strategy):
    name = "typiclust"

    def __init__(self, seed: int = 0, k: int = 20, max_items: int = MAX_ITEMS):
        super().__init__(seed)
        self.k = k
        self.max_items = max_items

    def query(self, features, labeled_idx, labels, budget, *, candidates, probs=None,
              class_names: Sequence[str] | None = None) -> list[Suggestion]:
        from skactiveml.pool import TypiClust

        record: dict = {}
        labeled_idx = np.asarray(labeled_idx, dtype=np.int64)
        rows = sample_rows(len(features), labeled_idx, np.asarray(candidates, np.int64), self.max_items, self.seed)
        local = np.searchsorted(rows, labeled_idx), np.searchsorted(rows, np.intersect1d(candidates, rows))
        y = y_with_missing(len(rows), local[0], labels)
        strategy = TypiClust(random_state=self.seed, k=self.k, cluster_algo=_recording_kmeans(record),
                             cluster_algo_dict={"n_init": 1})
        with quiet():
            picks, utilities = strategy.query(cluster_space(features[rows], self.seed), y, candidates=local[1],
                                              batch_size=int(budget), return_utilities=True)
        clusters = record["labels"]
        sizes = np.bincount(clusters, minlength=int(clusters.max()) + 1) * (len(features) / len(rows))
        labelled_clusters = set(clusters[local[0]].tolist())
        out = []
        for i, idx in enumerate(np.asarray(picks, dtype=np.int64)):
            c = int(clusters[idx])
            score = float(utilities[i, idx])
            group = self._similar(sizes[c], sampled=len(rows) < len(features))
            if c in labelled_clusters:  # TypiClust's own groups are finer than the map's: don't number them
                reason = f"typical of a group of {group}"
            else:
                reason = f"most typical of a group of {group}, none labelled yet"
            out.append(Suggestion(int(rows[idx]), reason, score))
        return out

    def _similar(self, n: float, sampled: bool = False) -> str:
        if sampled:  # counted on a sample: say so, to two significant figures
            n = int(float(f"{n:.2g}"))
            return f"about {n:,} similar {self.noun if n == 1 else self.plural}"
        n = int(round(n))
        return f"{n} similar {self.noun if n == 1 else self.plural}"


def sample_rows(n: int, labeled_idx: np.ndarray, candidates: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Sorted rows TypiClust runs on: all of them up to `limit`, else every labelled row and a seeded sample
    of the candidates. Its clustering and 10-d UMAP of all 100,000 items took 149 s a round, 13-15 s on the
    sample (docs/benchmarks.md, issue 23). A uniform sample of 10,000 keeps about 10 members of any group of
    0.1% of the items, so the groups a round of picks aims at are all still there."""
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    keep = max(0, limit - len(labeled_idx))
    picked = rng.choice(candidates, min(keep, len(candidates)), replace=False)
    return np.union1d(labeled_idx, picked)
