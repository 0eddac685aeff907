"""What a pretraining run leaves on disk: the default (newest checkpoint, best encoder) against the
previous policy (the newest two checkpoints, `keep_checkpoints=2`, and the newest encoder), same run.

The bytes depend on the backbone and the method, not on the images or the run's length, so a few
epochs on synthetic images measure what a 3-minute run on the sample photos leaves. Also counts the
encoder rows a run leaves in the store (before: one per epoch, most naming deleted files).

    .venv/bin/python benchmarks/bench_pretrain_disk.py [--backbone resnet18-std] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path


def _footprint(keep: int, args) -> dict:
    from sslapp.bench.data import synthetic_images, workspace_from_arrays
    from sslapp.ssl.train import pretrain

    root = Path(tempfile.mkdtemp()) / f"keep{keep}"
    x, y = synthetic_images(64, 32)
    ws = workspace_from_arrays(root, x, y)
    result = pretrain(ws, {"backbone": args.backbone, "epochs": args.epochs, "batch_size": 32, "seed": 0,
                           "keep_checkpoints": keep})
    files = [p for p in (ws.checkpoints_dir / f"run-{result['run_id']}").iterdir() if p.is_file()]
    return {"keep_checkpoints": keep, "mb": round(sum(p.stat().st_size for p in files) / 2**20, 1),
            "files": sorted(f"{p.name} {p.stat().st_size / 2**20:.1f} MB" for p in files),
            "encoder_rows": len(ws.store.run_artifacts(result["run_id"], "encoder"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="resnet18-std")  # what `auto` trains on a CPU
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    out = {"load": os.getloadavg()[0], "backbone": args.backbone, "epochs": args.epochs,
           "previous_policy": _footprint(2, args), "now": _footprint(1, args)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
