"""The measurements behind the features issue, on frozen features of the shared datasets.

    .venv/bin/python benchmarks/features_probe.py embed      # features of mnist-3k, cifar10-5k, pneumoniamnist
    .venv/bin/python benchmarks/features_probe.py knn        # kNN (k=20, cosine, 5-fold, all labels)
    .venv/bin/python benchmarks/features_probe.py propagate  # none / spreading / Poisson at 1, 3, 10 labels per class
    .venv/bin/python benchmarks/features_probe.py coldstart  # classes covered and accuracy of 1-per-class picks
    .venv/bin/python benchmarks/features_probe.py graphspace # Poisson over the features' graph or a 10-d UMAP's
    .venv/bin/python benchmarks/features_probe.py embed knn  # several, in this order, in one process

Images go through the app's preprocessing (64 px cache, bicubic) and the app's own encoders
(`sslapp.features`), so the figures are what a workspace gets. Features are kept in --cache
(default /tmp/features_probe) between subcommands. Prints the load average first. `--fit-patches`
(embed), `--per-class` (propagate), `--seeds` and `--spaces features` (coldstart: no UMAP) make a
run small, e.g. on tiny test arrays.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SETS = {"mnist": 3000, "cifar10": 5000, "pneumoniamnist": 1148}


def embed(cache: Path, fit_patches: int | None = None) -> None:
    import torch
    from PIL import Image

    from benchmarks.data import datasets_root
    from sslapp.features.service import IMAGENET_BACKBONE, IMAGENET_SIZE, PATCH_SIZE
    from sslapp.modalities.image.arrays import to_nchw_float
    from sslapp.modalities.image.quick import provisional_features
    from sslapp.models.backbones import Backbone
    from sslapp.models.encoder import Encoder, EncoderConfig
    from sslapp.models.patches import FIT_PATCHES, fit_patch_codes
    from sslapp.models.weights import init_backbone

    for name, n in SETS.items():
        x = np.load(datasets_root() / name / "images.npy")[:n]
        np.save(cache / f"{name}_y.npy", np.load(datasets_root() / name / "labels.npy")[:n])
        rgb = np.stack([np.asarray(Image.fromarray(a.squeeze()).convert("RGB").resize((64, 64), Image.BICUBIC))
                        for a in x])
        t = torch.from_numpy(to_nchw_float(rgb))
        enc = Encoder(EncoderConfig(IMAGENET_BACKBONE, 64, IMAGENET_SIZE))
        init_backbone(Backbone(enc.backbone, enc.dim, IMAGENET_BACKBONE, IMAGENET_SIZE), "imagenet")
        start = time.monotonic()
        with torch.inference_mode():
            f = torch.cat([enc.eval()(t[i:i + 200]) for i in range(0, n, 200)]).numpy()
        print(f"{name} imagenet {time.monotonic() - start:.1f}s", flush=True)
        np.save(cache / f"{name}_imagenet.npy", f)
        enc = Encoder(EncoderConfig("patches", 64, PATCH_SIZE))
        start = time.monotonic()
        with torch.inference_mode():
            _, f = fit_patch_codes(enc.preprocess(t), fit_patches=fit_patches or FIT_PATCHES)
        print(f"{name} patches {time.monotonic() - start:.1f}s", flush=True)
        np.save(cache / f"{name}_patches.npy", f.numpy())
        np.save(cache / f"{name}_pixels.npy", provisional_features(rgb, dim=64))


def _load(cache: Path, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    return np.load(cache / f"{name}_{kind}.npy"), np.load(cache / f"{name}_y.npy")


def knn(cache: Path) -> None:
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from sslapp.vectors import l2_normalize

    for name in SETS:
        for kind in ("pixels", "patches", "imagenet"):
            f, y = _load(cache, name, kind)
            f = l2_normalize(f)
            acc = cross_val_score(KNeighborsClassifier(20, metric="cosine"), f, y, cv=5).mean()
            print(f"{name} {kind} kNN {acc:.3f}", flush=True)


def _per_class(y: np.ndarray, per: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=False) for c in np.unique(y)])


def _rest(y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    mask = np.ones(len(y), bool)
    mask[idx] = False
    return mask


def propagate(cache: Path, per_class: tuple[int, ...] = (1, 3, 10), seeds: int = 3) -> None:
    from sslapp.estimators.api import fit_with_pseudo_labels
    from sslapp.estimators.poisson import poisson_distribution
    from sslapp.estimators.propagate import knn_graph

    for name in SETS:
        for kind in ("pixels", "patches", "imagenet"):
            f, y = _load(cache, name, kind)
            c = int(y.max()) + 1
            graph = knn_graph(f)
            for per in per_class:
                res: dict[str, list[float]] = {}
                for seed in range(seeds):
                    idx = _per_class(y, per, seed)
                    m = _rest(y, idx)
                    for method in (None, "spreading", "poisson"):
                        probe, _ = fit_with_pseudo_labels(f, idx, y[idx], c, method, 0, graph)
                        res.setdefault(str(method), []).append(float((probe.predict_proba(f).argmax(1)[m] == y[m]).mean()))
                    d = poisson_distribution(graph.weights, idx, y[idx], c)
                    res.setdefault("poisson-transductive", []).append(float((d.argmax(1)[m] == y[m]).mean()))
                print(name, kind, per, {k: round(float(np.mean(v)), 3) for k, v in res.items()}, flush=True)


def coldstart(cache: Path, spaces: tuple[str, ...] = ("features", "umap-10d"), seeds: int = 3) -> None:
    from sslapp.estimators.api import train_on_embeddings
    from sslapp.select import select
    from sslapp.select import typiclust as tc

    def accuracy(f, idx, y):
        seen, local = np.unique(y[idx], return_inverse=True)
        if len(seen) < 2:
            return 1 / len(np.unique(y))
        pred = seen[train_on_embeddings(f, idx, local, n_classes=len(seen)).argmax(1)]
        m = _rest(y, idx)
        return float((pred[m] == y[m]).mean())

    limits = {"features": 10 ** 9, "umap-10d": 0}  # TypiClust's UMAP_MIN_ITEMS for each space
    default_limit = tc.UMAP_MIN_ITEMS
    for name, kind in (("cifar10", "imagenet"), ("mnist", "patches"), ("pneumoniamnist", "imagenet")):
        f, y = _load(cache, name, kind)
        budget = int(y.max()) + 1 if len(np.unique(y)) > 2 else 10
        res: dict[str, list[tuple[int, float]]] = {}
        for seed in range(seeds):
            for space in spaces:
                tc.UMAP_MIN_ITEMS = limits[space]
                try:
                    idx = np.array(select("typiclust", f, [], [], budget, seed=seed).indices)
                finally:  # a later subcommand in the same run gets the app's TypiClust
                    tc.UMAP_MIN_ITEMS = default_limit
                res.setdefault(f"typiclust on {space}", []).append((len(np.unique(y[idx])), accuracy(f, idx, y)))
            idx = np.random.default_rng(seed).choice(len(f), budget, replace=False)
            res.setdefault("random", []).append((len(np.unique(y[idx])), accuracy(f, idx, y)))
        print(name, kind, budget, {k: (round(np.mean([a for a, _ in v]), 1), round(np.mean([b for _, b in v]), 3))
                                   for k, v in res.items()}, flush=True)


def graphspace(cache: Path, seeds: int = 3) -> None:
    """Poisson learning at 1 and 3 labels per class over the kNN graph of the features against the
    Euclidean kNN graph of their 10-d UMAP (the space the cold-start picks cluster in)."""
    from sklearn.neighbors import NearestNeighbors

    from sslapp.estimators.api import fit_with_pseudo_labels
    from sslapp.estimators.poisson import poisson_distribution
    from sslapp.estimators.propagate import KnnGraph, knn_graph
    from sslapp.select import select
    from sslapp.select.typiclust import cluster_space

    only = os.environ.get("PROBE_SETS")
    for name, kind in (("mnist", "pixels"), ("mnist", "patches"), ("pneumoniamnist", "pixels"),
                       ("cifar10", "imagenet"), ("mnist", "imagenet")):
        if only and f"{name}:{kind}" not in only.split(","):
            continue
        if not (cache / f"{name}_{kind}.npy").exists():
            continue
        f, y = _load(cache, name, kind)
        c = int(y.max()) + 1
        start = time.monotonic()
        u = cluster_space(f, seed=0)
        dist, ind = NearestNeighbors(n_neighbors=10).fit(u).kneighbors(u)
        graphs = {"features": knn_graph(f), "umap-10d": KnnGraph(ind, dist, u)}
        umap_s = time.monotonic() - start
        for per in (1, 3):
            res: dict[str, list[float]] = {}
            for seed in range(seeds):
                picks = {"random": _per_class(y, per, seed)}
                if per == 1:
                    budget = c if c > 2 else 10
                    picks["typiclust"] = np.array(select("typiclust", f, [], [], budget, seed=seed).indices)
                for pick, idx in picks.items():
                    m = _rest(y, idx)
                    seen, local = np.unique(y[idx], return_inverse=True)
                    for space, graph in graphs.items():
                        d = poisson_distribution(graph.weights, idx, local, len(seen))
                        res.setdefault(f"{pick}/{space}/poisson", []).append(float((seen[d.argmax(1)][m] == y[m]).mean()))
                        probe, _ = fit_with_pseudo_labels(f, idx, local, len(seen), "poisson", 0, graph)
                        pred = seen[probe.predict_proba(f).argmax(1)]
                        res.setdefault(f"{pick}/{space}/probe", []).append(float((pred[m] == y[m]).mean()))
            print(name, kind, f"{per}/class", f"umap {umap_s:.0f}s",
                  {k: round(float(np.mean(v)), 3) for k, v in res.items()}, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="+", choices=["embed", "knn", "propagate", "coldstart", "graphspace"])
    ap.add_argument("--cache", default="/tmp/features_probe")
    ap.add_argument("--fit-patches", type=int, default=None,
                    help="embed: random patches the patch dictionary is fitted on (default: the app's)")
    ap.add_argument("--spaces", default="features,umap-10d",
                    help="coldstart: where TypiClust clusters, comma-separated (features, umap-10d)")
    ap.add_argument("--per-class", default="1,3,10", help="propagate: labels per class, comma-separated")
    ap.add_argument("--seeds", type=int, default=3, help="propagate, coldstart, graphspace: draws averaged")
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M')} load average {os.getloadavg()}", flush=True)
    per_class = tuple(int(v) for v in args.per_class.split(","))
    steps = {"embed": lambda: embed(cache, args.fit_patches), "knn": lambda: knn(cache),
             "propagate": lambda: propagate(cache, per_class, args.seeds),
             "coldstart": lambda: coldstart(cache, tuple(args.spaces.split(",")), args.seeds),
             "graphspace": lambda: graphspace(cache, args.seeds)}
    for what in args.what:
        steps[what]()


if __name__ == "__main__":
    main()
