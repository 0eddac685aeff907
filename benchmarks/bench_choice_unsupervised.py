"""Can an unsupervised criterion tell which starting embedding will classify best, before any label?

For each shared dataset and each starting encoder (ImageNet, patch dictionary, pixel PCA), prints
the truth (Poisson learning from 1 random label per class, mean of 10 draws, and kNN accuracy with
every label) beside label-free criteria measured on the same features:
- eigengap: the largest gap in the normalised kNN-graph Laplacian spectrum (k from 3 to 30);
- modularity of k-means clusters (k = that eigengap's k) on the kNN graph;
- silhouette (cosine) of those clusters.

    python benchmarks/bench_choice_unsupervised.py --n 2000 [--sets cifar10] [--starts imagenet,pixels]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.data import datasets_root  # noqa: E402


def load(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    images = np.load(datasets_root() / name / "images.npy", mmap_mode="r")
    truth = np.load(datasets_root() / name / "labels.npy").reshape(-1)
    pick = np.sort(np.random.default_rng(0).choice(len(images), size=min(n, len(images)), replace=False))
    x = np.asarray(images[pick])
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x, truth[pick]


def criteria(features: np.ndarray, seed: int = 0) -> dict[str, float]:
    from sklearn.metrics import silhouette_score

    from sslapp.estimators.propagate import knn_graph
    from sslapp.maps.clusters import _kmeans, _reduce, eigengap_k

    x = _reduce(features, seed=seed)
    k, gaps = eigengap_k(x, seed=seed)
    labels = _kmeans(k, len(x), seed).fit_predict(x)
    w = knn_graph(features).weights.tocsr()
    w = (w + w.T) / 2
    deg = np.asarray(w.sum(axis=1)).ravel()
    m2 = deg.sum()
    q = 0.0
    for c in range(k):
        rows = labels == c
        inside = w[rows][:, rows].sum()
        q += inside / m2 - (deg[rows].sum() / m2) ** 2
    return {"k": k, "eigengap": gaps[k], "modularity": q,
            "silhouette": float(silhouette_score(x, labels, metric="cosine", sample_size=min(2000, len(x)),
                                                 random_state=seed))}


def truth_scores(features: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from sslapp.estimators.poisson import poisson_distribution
    from sslapp.estimators.propagate import knn_graph

    classes = np.unique(y)
    yy = np.searchsorted(classes, y)
    graph = knn_graph(features)
    accs = []
    for draw in range(10):
        rng = np.random.default_rng(draw)
        idx = np.array([rng.choice(np.flatnonzero(yy == c)) for c in range(len(classes))])
        dist = poisson_distribution(graph.weights, idx, yy[idx], len(classes))
        rest = np.setdiff1d(np.arange(len(yy)), idx)
        accs.append(float((dist[rest].argmax(1) == yy[rest]).mean()))
    knn = cross_val_score(KNeighborsClassifier(20, metric="cosine"), features, yy, cv=5).mean()
    return {"poisson@1/class": float(np.mean(accs)), "kNN all": float(knn)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sets", default="cifar10,mnist,pneumoniamnist")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--starts", default=None, help="starting encoders to make, comma-separated "
                   "(imagenet, patches, pixels; default: the app's)")
    args = p.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    from sslapp.bench.data import workspace_from_arrays
    from sslapp.features.read import describe, encoders
    from sslapp.features.service import ensure_starting_encoders, features_for

    for name in args.sets.split(","):
        x, y = load(name, args.n)
        with tempfile.TemporaryDirectory() as tmp:
            ws = workspace_from_arrays(Path(tmp) / "ws", x)
            if args.starts:
                ws.store.set_setting("features.starts", args.starts.split(","))
            ensure_starting_encoders(ws)
            print(f"\n{name} (n={len(x)})", flush=True)
            for art in encoders(ws):
                f = features_for(ws, art).features
                t, c = truth_scores(f, y), criteria(f)
                print(f"  {describe(art):40s} " + "  ".join(f"{k}={v:.3f}" for k, v in {**t, **c}.items()),
                      flush=True)


if __name__ == "__main__":
    main()
