"""Likely label errors on planted flips: how many of the top 20 / top 40 the review lists are real flips.

    .venv/bin/python benchmarks/bench_review.py                       # mnist and cifar10, 400 labels, 5% flipped
    .venv/bin/python benchmarks/bench_review.py --sets cifar10 --seeds 1 --labels 200 --embeddings patches
    .venv/bin/python benchmarks/bench_review.py --sweep               # probe vs kNN at 2..20 labels per class

For each dataset a seeded class-stratified pool of --labels images becomes a workspace
(`sslapp.bench.data.workspace_from_arrays`, cache at the images' own size, mnist as 3 equal channels), and the app's starting
encoders embed it (`sslapp.features.service`: ImageNet EfficientNet-Lite0, the patch dictionary).
Per seed, --flip of the labels are changed to a random other class, then the labels are ranked by:
- ours: `sslapp.curate.label_issues.rank_label_issues` (out-of-fold probabilities of the app's probe,
  of kNN, or their mean, then cleanlab's label quality), with each quality method and each route;
- cleanlab: its documented default, out-of-fold probabilities of scikit-learn's LogisticRegression
  (`cross_val_predict`, 5 folds) and `cleanlab.filter.find_label_issues(..., return_indices_ranked_by=
  "self_confidence")`, which lists only the labels it flags (a short list counts misses as wrong);
- random: the expected precision of a random order (= the flip rate).
Precision@k = planted flips among the first k / k (with 20 flips, P@40 is at most 0.5). `--sweep` compares the probe and kNN routes at
few labels per class (10% flipped, R-precision: flips among the first #flips), which sets
PROBE_MIN_PER_CLASS / PROBE_MIN_MEAN in sslapp/curate/label_issues.py. Prints the load average first.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUALITIES = ("normalized_margin", "self_confidence")


def pool(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded class-stratified subset of n images (N, S, S, 3) uint8 and their true classes."""
    from benchmarks.data import datasets_root

    images = np.load(datasets_root() / name / "images.npy", mmap_mode="r")
    labels = np.load(datasets_root() / name / "labels.npy")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = n // len(classes)
    keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per] for c in classes]))
    x = np.asarray(images[keep])
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x, labels[keep].astype(np.int64)


def embed(name: str, images: np.ndarray, kinds: list[str], work: Path) -> dict[str, np.ndarray]:
    """The app's starting encoders' features of `images` (store order = array order)."""
    from sslapp.bench.data import workspace_from_arrays
    from sslapp.features.read import encoders
    from sslapp.features.service import ensure_starting_encoders, features_for
    from sslapp.workspace import open_workspace

    path = work / f"ws-{name}-{len(images)}"
    ws = open_workspace(path) if (path / "sslapp.db").exists() else workspace_from_arrays(path, images)
    ws.store.set_setting("features.starts", kinds)
    ensure_starting_encoders(ws)
    starts = {(a.get("meta") or {}).get("start"): a for a in encoders(ws)}
    out = {}
    for kind in kinds:
        t = time.monotonic()
        out[kind] = features_for(ws, starts[kind]).features
        print(f"  {name} {kind}: {out[kind].shape} in {time.monotonic() - t:.1f}s", flush=True)
    return out


def flip(labels: np.ndarray, rate: float, n_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, indices flipped): round(rate * N) labels moved to a random other class."""
    noisy = labels.copy()
    idx = rng.choice(len(labels), int(round(rate * len(labels))), replace=False)
    noisy[idx] = (labels[idx] + rng.integers(1, n_classes, len(idx))) % n_classes
    return noisy, idx


def precision_at(ranked: np.ndarray, flipped: np.ndarray, k: int) -> float:
    return len(np.intersect1d(np.asarray(ranked)[:k], flipped)) / k


def cleanlab_default(features: np.ndarray, noisy: np.ndarray, seed: int) -> np.ndarray:
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    proba = cross_val_predict(LogisticRegression(max_iter=1000), features, noisy, cv=folds, method="predict_proba")
    return find_label_issues(noisy, proba, return_indices_ranked_by="self_confidence")


def routes(feats: np.ndarray, noisy: np.ndarray, n_classes: int, seed: int) -> dict[str, np.ndarray]:
    """Out-of-fold probabilities of each route: the probe, kNN, and their mean (the "ensemble")."""
    from sslapp.curate.label_issues import oof_probabilities

    out = {r: oof_probabilities(feats, noisy, n_classes, r, seed)[0] for r in ("probe", "knn")}
    out["ensemble"] = (out["probe"] + out["knn"]) / 2
    return out


def compare(feats: np.ndarray, truth: np.ndarray, rate: float, seeds: int, ks: tuple[int, ...]) -> dict[str, list]:
    from sslapp.curate.label_issues import rank_from_probabilities, rank_label_issues

    n_classes = int(truth.max() + 1)
    rows: dict[str, list] = {}
    for seed in range(seeds):
        noisy, flipped = flip(truth, rate, n_classes, np.random.default_rng(1000 + seed))
        ranked = {}
        probs = routes(feats, noisy, n_classes, seed)
        for route, proba in probs.items():
            for quality in QUALITIES:
                ranked[f"ours {route} {quality}"] = rank_from_probabilities(noisy, proba, quality)[0]
        ranked["ours (auto, as the app runs it)"] = rank_label_issues(feats, noisy, seed)[0]
        ranked["cleanlab find_label_issues (LogReg CV)"] = cleanlab_default(feats, noisy, seed)
        for name, r in ranked.items():
            rows.setdefault(name, []).append([precision_at(r, flipped, k) for k in ks])
        rows.setdefault("random", []).append([len(flipped) / len(truth)] * len(ks))
    return rows


def sweep(feats: np.ndarray, truth: np.ndarray, seeds: int) -> None:
    """Probe vs kNN (each with both quality methods) at few labels per class, 10% flipped."""
    from sslapp.curate.label_issues import rank_from_probabilities

    n_classes = int(truth.max() + 1)
    for per in (3, 5, 8, 12):
        scores: dict[str, list[float]] = {}
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            keep = np.concatenate([rng.permutation(np.flatnonzero(truth == c))[:per] for c in range(n_classes)])
            noisy, flipped = flip(truth[keep], 0.1, n_classes, rng)
            if len(flipped) == 0 or np.bincount(noisy, minlength=n_classes).min() < 2:
                continue
            for route, proba in routes(feats[keep], noisy, n_classes, seed).items():
                for quality in QUALITIES:
                    order = rank_from_probabilities(noisy, proba, quality)[0]
                    scores.setdefault(f"{route} {quality}", []).append(precision_at(order, flipped, len(flipped)))
        line = "  ".join(f"{k} {np.mean(v):.2f}" for k, v in scores.items())
        print(f"    {per:>2}/class ({len(scores.get('knn self_confidence', []))} runs): {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="mnist,cifar10")
    p.add_argument("--labels", type=int, default=400)
    p.add_argument("--flip", type=float, default=0.05)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--embeddings", default="imagenet,patches")
    p.add_argument("--sweep", action="store_true", help="probe vs kNN at 2-20 labels per class instead")
    p.add_argument("--work", type=Path, default=None, help="folder for the workspaces (default: a temporary one)")
    args = p.parse_args(argv)
    print(f"load: {os.getloadavg()}  ({os.cpu_count()} CPUs)", flush=True)
    ks = (20, 40)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for name in args.sets.split(","):
            images, truth = pool(name, args.labels)
            feats = embed(name, images, args.embeddings.split(","), work)
            for kind, f in feats.items():
                print(f"{name} / {kind}: {len(truth)} labels, {100 * args.flip:.0f}% flipped, {args.seeds} seeds",
                      flush=True)
                if args.sweep:
                    sweep(f, truth, args.seeds)
                    continue
                t = time.monotonic()
                rows = compare(f, truth, args.flip, args.seeds, ks)
                for method, vals in rows.items():
                    m = np.mean(vals, axis=0)
                    print(f"    {method:<42} " + "  ".join(f"P@{k} {v:.3f}" for k, v in zip(ks, m, strict=True)))
                print(f"    ({time.monotonic() - t:.1f}s)", flush=True)
    print(f"load: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
