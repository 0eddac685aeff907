"""How many clusters should the map show? Candidate ways to pick k, scored against the known
classes of the shared datasets (NMI and ARI with the truth, and the k each picks).

    python benchmarks/bench_clusters.py --sets cifar10,mnist,pneumoniamnist --n 3000 [--starts patches]

Features are the app's own (`sslapp.features.service.best_embedding` on a workspace built from the
arrays, no labels, so the prior decides), and the map is the app's UMAP layout.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_choice_unsupervised import load


def candidates(features: np.ndarray, xy: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    from sklearn.cluster import HDBSCAN

    from sslapp.maps import clusters as C

    out: dict[str, np.ndarray] = {}
    out["silhouette-features (old)"] = C.kmeans(features, seed=seed).labels
    x = C._reduce(features, seed=seed)
    for name, space in (("map", np.asarray(xy, np.float32)),):
        k, _ = C.choose_k(space, (2, 20), seed)
        out[f"silhouette-{name} k<=20"] = C._kmeans(k, len(space), seed).fit_predict(space)
        k, _ = C.choose_k(space, (2, 30), seed)
        out[f"silhouette-{name} k<=30"] = C._kmeans(k, len(space), seed).fit_predict(space)
    for lo, hi in ((5, 20), (4, 16)):
        k, _ = C.choose_k(x, (lo, hi), seed)
        out[f"silhouette-features k in {lo}..{hi}"] = C._kmeans(k, len(x), seed).fit_predict(x)
        space = np.asarray(xy, np.float32)
        k, _ = C.choose_k(space, (lo, hi), seed)
        out[f"silhouette-map k in {lo}..{hi}"] = C._kmeans(k, len(space), seed).fit_predict(space)
    k = eigengap_k(x)
    out[f"eigengap kNN graph (k={k})"] = C._kmeans(k, len(x), seed).fit_predict(x)
    space = np.asarray(xy, np.float32)
    out[f"eigengap k={k}, k-means on map"] = C._kmeans(k, len(space), seed).fit_predict(space)
    km = eigengap_k(space)
    out[f"eigengap of map graph (k={km}) on map"] = C._kmeans(km, len(space), seed).fit_predict(space)
    n = len(features)
    for size in (max(5, n // 100), max(5, n // 50), max(5, n // 25)):
        out[f"hdbscan-map min={size}"] = HDBSCAN(min_cluster_size=size, min_samples=min(size, 10)).fit_predict(
            np.asarray(xy, np.float64))
    for k in (10,):
        out[f"fixed k={k} on features"] = C._kmeans(k, n, seed).fit_predict(x)
    return out


def eigengap_k(x: np.ndarray, neighbours: int = 15, k_max: int = 30, lo: int = 3) -> int:
    """The number of clusters the kNN graph's spectrum suggests: the largest gap between consecutive
    eigenvalues of the normalised Laplacian, from `lo` on."""
    from scipy.sparse.csgraph import laplacian
    from scipy.sparse.linalg import eigsh
    from sklearn.neighbors import kneighbors_graph

    k_max = min(k_max, len(x) - 2)  # a small sample has fewer eigenvalues than that
    g = kneighbors_graph(x, min(neighbours, len(x) - 1), mode="connectivity", include_self=False)
    g = ((g + g.T) > 0).astype(np.float64)
    lap = laplacian(g, normed=True)
    vals = np.sort(eigsh(lap, k=k_max + 1, sigma=-1e-3, which="LM", return_eigenvectors=False))
    gaps = np.diff(vals)
    return int(np.argmax(gaps[lo - 1:]) + lo)


def score(truth: np.ndarray, labels: np.ndarray) -> tuple[int, float, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    k = len(set(labels[labels >= 0].tolist()))
    return k, normalized_mutual_info_score(truth, labels), adjusted_rand_score(truth, labels)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sets", default="cifar10,mnist,pneumoniamnist")
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--starts", default=None, help="starting encoders to make, comma-separated "
                   "(imagenet, patches, pixels; default: the app's)")
    args = p.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    from sslapp.bench.data import workspace_from_arrays
    from sslapp.features.service import best_embedding
    from sslapp.maps.umap_map import fit_map

    for name in args.sets.split(","):
        x, truth_pick = load(name, args.n)  # the same sample as bench_choice_unsupervised
        with tempfile.TemporaryDirectory() as tmp:
            ws = workspace_from_arrays(Path(tmp) / "ws", x)
            if args.starts:
                ws.store.set_setting("features.starts", args.starts.split(","))
            t = time.monotonic()
            emb = best_embedding(ws)
            xy, _ = fit_map(emb.features, seed=0)
            print(f"\n{name} n={len(x)} classes={len(set(truth_pick.tolist()))} embedding={emb.name} "
                  f"({time.monotonic() - t:.0f} s)", flush=True)
            for cand, labels in candidates(emb.features, xy).items():
                t = time.monotonic()
                k, nmi, ari = score(truth_pick, np.asarray(labels))
                print(f"  {cand:32s} k={k:3d}  NMI={nmi:.3f}  ARI={ari:.3f}", flush=True)


if __name__ == "__main__":
    main()
