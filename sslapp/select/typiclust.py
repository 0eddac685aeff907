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


def cluster_space(features: np.ndarray, seed: int) -> np.ndarray:
    """Where clusters follow the data's kinds best: a 10-d UMAP (cosine) for sets of UMAP_MIN_ITEMS or
    more, the features themselves for smaller ones."""
    if len(features) < UMAP_MIN_ITEMS:
        return features
    from sslapp.maps.numba_cache import import_umap

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

    def __init__(self, seed: int = 0, k: int = 20):
        super().__init__(seed)
        self.k = k

    def query(self, features, labeled_idx, labels, budget, *, candidates, probs=None,
              class_names: Sequence[str] | None = None) -> list[Suggestion]:
        from skactiveml.pool import TypiClust

        record: dict = {}
        y = y_with_missing(len(features), labeled_idx, labels)
        strategy = TypiClust(random_state=self.seed, k=self.k, cluster_algo=_recording_kmeans(record),
                             cluster_algo_dict={"n_init": 1})
        with quiet():
            picks, utilities = strategy.query(cluster_space(features, self.seed), y, candidates=candidates,
                                              batch_size=int(budget), return_utilities=True)
        clusters = record["labels"]
        sizes = np.bincount(clusters, minlength=int(clusters.max()) + 1)
        labelled_clusters = set(clusters[np.asarray(labeled_idx, dtype=np.int64)].tolist())
        out = []
        for i, idx in enumerate(np.asarray(picks, dtype=np.int64)):
            c = int(clusters[idx])
            score = float(utilities[i, idx])
            if c in labelled_clusters:  # TypiClust's own groups are finer than the map's: don't number them
                reason = f"typical of a group of {self._similar(sizes[c])}"
            else:
                reason = f"most typical of a group of {self._similar(sizes[c])}, none labelled yet"
            out.append(Suggestion(int(idx), reason, score))
        return out

    def _similar(self, n: int) -> str:
        return f"{n} similar {self.noun if n == 1 else self.plural}"
