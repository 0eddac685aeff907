#!/usr/bin/env bash
# Every CUDA path sslapp has, then a 5-minute cifar10 pretraining with kNN: one script, under 8 minutes.
# Run it whenever a GPU machine is lent (the `device` tool), from the repo root:
#     bash benchmarks/gpu_check.sh [OUT_DIR]
# It writes OUT_DIR/gpu_check.json (default $OUT or /tmp/gpu_check) and prints a summary; exit 0 only if
# every check passed. Needs ../shared/datasets/cifar10 for the quality run (skipped, and said, without it).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-/tmp/gpu_check}}
mkdir -p "$OUT_DIR"
[ -x .venv/bin/python ] || bash scripts/setup.sh >&2
PY=.venv/bin/python
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT_DIR/gpu.txt"
exec "$PY" - "$OUT_DIR" <<'EOF'
import json, os, subprocess, sys, tempfile, time, traceback
from pathlib import Path

import numpy as np
import torch

out_dir = Path(sys.argv[1])
results = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "gpus": torch.cuda.device_count(),
           "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "checks": {}}


def check(name, fn):
    t0 = time.monotonic()
    try:
        value = fn()
        results["checks"][name] = {"ok": True, "seconds": round(time.monotonic() - t0, 1), **(value or {})}
    except Exception as exc:
        results["checks"][name] = {"ok": False, "seconds": round(time.monotonic() - t0, 1),
                                   "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
    print(name, json.dumps(results["checks"][name])[:300], flush=True)


from sslapp.bench.data import synthetic_images, workspace_from_arrays  # noqa: E402
from sslapp.ssl.train import pretrain  # noqa: E402

assert torch.cuda.is_available(), "no CUDA device visible"
tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
images, labels = synthetic_images(2048, 32, seed=0)
ws = workspace_from_arrays(tmp / "ws", images, labels, label_every=20)  # ~100 labels for the fine-tune


def run(**cfg):
    s = pretrain(ws, {"device": "cuda", "probe": False, "seed": 0, **cfg})
    return {k: s.get(k) for k in ("backbone", "batch_size", "epochs", "images_per_s", "final_loss", "messages")
            if k in s}


# bf16 autocast + channels_last are always on for CUDA; compile is asked for.
check("bf16_channels_last_simclr", lambda: run(method="simclr", backbone="resnet18", max_steps=20))
for method in ("mocov3", "byol", "swav", "dino", "rotation"):
    check(f"method_{method}", lambda m=method: run(method=m, backbone="resnet18", max_steps=10))
check("mae_vit", lambda: run(method="mae", backbone="vit-tiny", max_steps=10))
check("compile", lambda: run(method="simclr", backbone="resnet18", max_steps=20, compile=True))
check("imagenet_start_continued", lambda: run(method="simclr", backbone="efficientnet-lite0", init="imagenet",
                                              max_steps=10))
# A batch no GPU holds: the loop must halve it until it fits and go on.
check("oom_retry", lambda: run(method="simclr", backbone="resnet50", train_size=224, batch_size=16384, max_steps=3))


def full_finetune():
    from sslapp.cli.common import run_job_in_foreground

    job = run_job_in_foreground(ws, "finetune", {"mode": "full", "epochs": 3})
    assert job["status"] == "done", job["error"]
    return {"estimate": job["result"]["estimate"]["text"]}


check("full_finetune", full_finetune)


def ddp():
    if torch.cuda.device_count() < 2:
        return {"skipped": "one GPU: nccl DDP needs 2 or more"}
    cmd = ["torchrun", f"--nproc_per_node={min(2, torch.cuda.device_count())}", "-m", "sslapp", "pretrain",
           str(ws.root), "--method", "simclr", "--backbone", "resnet18", "--epochs", "1", "--device", "cuda", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return {"result": p.stdout[-500:]}


check("ddp_nccl", ddp)


def quality():
    data = Path("../shared/datasets/cifar10")
    if not data.exists():
        return {"skipped": "no ../shared/datasets/cifar10"}
    p = subprocess.run([sys.executable, "benchmarks/bench_pretrain_quality.py", "--dataset", "cifar10",
                        "--minutes", "5", "--configs", "auto"], capture_output=True, text=True, timeout=480)
    assert p.returncode == 0, p.stderr[-2000:]
    return {"report": p.stdout[-1500:]}


check("cifar10_5min_knn", quality)
results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
(out_dir / "gpu_check.json").write_text(json.dumps(results, indent=1))
failed = [k for k, v in results["checks"].items() if not v["ok"]]
print(f"{len(results['checks']) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
EOF
