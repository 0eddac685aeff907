"""`sslapp pretrain` under torchrun: 2 CPU processes with gloo train together, only rank 0 writes."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sslapp.bench.data import synthetic_images, workspace_from_arrays


def test_two_process_ddp_run_on_cpu(tmp_path):
    torch_dist = pytest.importorskip("torch.distributed")
    if not torch_dist.is_available() or not torch_dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed")
    x, y = synthetic_images(32, 16)
    ws = workspace_from_arrays(tmp_path / "ws", x, y)
    ws.store.set_setting("features.starts", ["pixels"])  # rank 0's comparison with the starts stays cheap
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "sslapp", "pretrain", str(ws.root),
         "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--probe-size", "16", "--json"],
        capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "done" and out["epochs"] == 1
    assert "rank 1: trained 4 steps" in proc.stderr  # 32 images / 2 ranks / batch 4
    job = ws.store.job(out["job"])
    assert job["result"]["world_size"] == 2 and job["result"]["steps"] == 4
    assert math.isfinite(job["result"]["loss"])  # neither NaN nor inf
    # one job, one run, checkpoints from rank 0 only
    assert len(ws.store.jobs()) == 1 and len(ws.store.runs()) == 1
    files = sorted(p.name for p in ws.checkpoints_dir.rglob("*.pt"))
    assert files == ["epoch-e0001-s0000004.pt"], files
