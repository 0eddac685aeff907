"""Where should `auto` switch from typical picks to uncertainty x diversity? Measure it.

Simulates a user on a kept benchmark workspace (`sslapp bench label-efficiency ... --workspace DIR`):
labels arrive in rounds of `--round`, and after each checkpoint the app's classifier is scored on
every image never revealed. Compared: `auto` with switch thresholds T (labels per class), pure
TypiClust (T = inf), the uncertainty phase from the start (T = 0), and random picks.

    python benchmarks/auto_switch.py WORKSPACE TRUTH.csv --switches 0,2,5,10,20,inf --max-labels 200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslapp.bench.label_efficiency import accuracy, app_predict, read_truth  # noqa: E402
from sslapp.select import select  # noqa: E402


def features_of(ws, provisional: bool = False) -> np.ndarray:
    from sslapp.features.service import best_embedding
    from sslapp.ingest.cache import read_cache
    from sslapp.modalities.image.quick import provisional_features

    rows = np.array([p[1] for p in ws.store.item_ids_and_cache_index()], np.int64)
    if provisional:
        return provisional_features(read_cache(ws), rows, dim=64)  # as the label-efficiency bench
    return best_embedding(ws).features


def run(features, y, strategy, options, checkpoints, round_size, seed):
    revealed: list[int] = []
    out = {}
    for c in checkpoints:
        while len(revealed) < c:
            idx = np.array(revealed, np.int64)
            sel = select(strategy, features, idx, y[idx], min(round_size, c - len(revealed)), seed=seed,
                         options=options)
            revealed += sel.indices
        r = np.array(revealed, np.int64)
        out[c] = accuracy(app_predict(features, r, y[r], seed), y, r)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workspace")
    p.add_argument("truth")
    p.add_argument("--switches", default="0,2,5,10,20,inf")
    p.add_argument("--late", default="margin-diverse", help="auto's second phase: margin-diverse or badge")
    p.add_argument("--checkpoints", default="10,20,30,50,75,100,150,200")
    p.add_argument("--round", type=int, default=10)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--random", action="store_true", help="also random picks")
    p.add_argument("--provisional", action="store_true", help="use the provisional pixel embedding")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    from sslapp.workspace import open_workspace

    ws = open_workspace(args.workspace, create=False)
    truth = read_truth(args.truth)
    classes = sorted(set(truth.values()))
    y = np.array([classes.index(truth[r["source"]]) for r in ws.store.items()], np.int64)
    t0 = time.monotonic()
    features = features_of(ws, args.provisional)
    print(f"{len(y)} images, {len(classes)} classes, features {features.shape} ({time.monotonic() - t0:.0f}s)",
          file=sys.stderr)
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    configs = [("auto", {"switch": float(t), "late": args.late}, f"auto T={t}") for t in args.switches.split(",")]
    if args.random:
        configs.append(("random", {}, "random"))
    table = {}
    for strategy, options, name in configs:
        accs = [run(features, y, strategy, options, checkpoints, args.round, s) for s in range(args.seeds)]
        table[name] = {c: float(np.mean([a[c] for a in accs])) for c in checkpoints}
        print(f"{name:<14} " + " ".join(f"{table[name][c]:.3f}" for c in checkpoints) +
              f"   ({time.monotonic() - t0:.0f}s)", flush=True)
    print("labels         " + " ".join(f"{c:>5}" for c in checkpoints))
    if args.json:
        args.json.write_text(json.dumps({"checkpoints": checkpoints, "classes": len(classes), "table": table}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
