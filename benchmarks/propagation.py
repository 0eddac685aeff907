"""Which use of the unlabelled pool helps the linear probe: none, label spreading or self-training?

Embeddings are PCA-50 of raw pixels (a stand-in for SSL embeddings, available without pretraining).
Labels are picked at random, k per class; accuracy is measured on every unlabelled image.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/propagation.py [--datasets mnist,cifar10,pneumoniamnist]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.data import datasets_root  # noqa: E402
from sslapp.estimators.api import train_on_embeddings  # noqa: E402


def load(name: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
    images = np.load(datasets_root() / name / "images.npy", mmap_mode="r")[:limit]
    labels = np.load(datasets_root() / name / "labels.npy")[:limit].astype(np.int64).ravel()
    X = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return PCA(min(50, *X.shape), random_state=0).fit_transform(X), labels  # fewer on a tiny set


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="mnist,cifar10,pneumoniamnist")
    ap.add_argument("--per-class", default="1,3,10")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default="off,spreading,self-training")
    ap.add_argument("--limit", type=int, default=10000)
    args = ap.parse_args()
    rows = []
    for name in args.datasets.split(","):
        X, y = load(name, args.limit)
        n_classes = int(y.max() + 1)
        for k in (int(v) for v in args.per_class.split(",")):
            for method in args.methods.split(","):
                accs, t0 = [], time.perf_counter()
                for seed in range(args.seeds):
                    rng = np.random.default_rng(seed)
                    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False)
                                          for c in range(n_classes)])
                    p = train_on_embeddings(X, idx, y[idx], propagate=method, seed=seed, n_classes=n_classes)
                    rest = np.setdiff1d(np.arange(len(y)), idx)
                    accs.append(float((p[rest].argmax(1) == y[rest]).mean()))
                row = {"dataset": name, "per_class": k, "labels": k * n_classes, "propagate": method,
                       "accuracy": round(float(np.mean(accs)), 4), "std": round(float(np.std(accs)), 4),
                       "seconds": round((time.perf_counter() - t0) / args.seeds, 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    methods = args.methods.split(",")
    print("\n| dataset | labels | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for name in args.datasets.split(","):
        for k in (int(v) for v in args.per_class.split(",")):
            cells = {r["propagate"]: f"{r['accuracy']:.3f} ± {r['std']:.3f}" for r in rows
                     if r["dataset"] == name and r["per_class"] == k}
            labels = next(r["labels"] for r in rows if r["dataset"] == name and r["per_class"] == k)
            print(f"| {name} | {labels} | " + " | ".join(cells.get(m, "-") for m in args.methods.split(",")) + " |")


if __name__ == "__main__":
    main()
