"""Real pretraining on tiny data: every method runs, checkpoints and resumes exactly; faults end cleanly.

A worker killed mid-run and resumed is tests/test_faults.py's; a paused run resumed is
tests/test_pretrain_keep.py's."""

from __future__ import annotations

import importlib
import json
import math
import os
import resource
import signal

import numpy as np
import pytest
import torch

from sslapp import catalogue
from sslapp.bench.data import synthetic_images, workspace_from_arrays
from sslapp.ssl.checkpoint import load_checkpoint
from sslapp.ssl.methods import METHODS
from sslapp.ssl.plan import VIT_METHODS
from sslapp.ssl.probe import collapse_std, knn_accuracy
from sslapp.ssl.train import PretrainError, pretrain

TINY = {"epochs": 1, "batch_size": 8, "probe_size": 16, "seed": 3}


def _available(name: str) -> bool:
    try:
        importlib.import_module(METHODS[name].target.split(":")[0])
    except ModuleNotFoundError:
        return False
    return True


@pytest.fixture
def tiny_ws(tmp_path):
    return _workspace(tmp_path, 16)


def _workspace(tmp_path, n: int):
    """`n` synthetic labelled images; the pixel start is the only starting encoder, so the comparison a
    finished pretraining job makes with the other embeddings is cheap (ImageNet's has its own tests)."""
    x, y = synthetic_images(n, 16)
    ws = workspace_from_arrays(tmp_path / "ws", x, y)
    ws.store.set_setting("features.starts", ["pixels"])
    return ws


def _params_equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", catalogue.method_names("image"))
def test_each_method_trains_checkpoints_and_resumes_exactly(tiny_ws, method):
    if not _available(method):
        pytest.skip(f"{method} is not implemented in this checkout yet")
    ws = tiny_ws
    # a quarter-width ResNet-18 (the ViT-only methods keep their ViT): the same training code, with
    # checkpoints of a few MB instead of a few hundred
    plan = {**TINY, "method": method, **({} if method in VIT_METHODS else {"backbone": "resnet18-w16"})}
    # checkpoint_every_s=0: a mid-epoch checkpoint before every step, kept (a run keeps only its newest
    # by default), so we can resume after step 1
    result = pretrain(ws, {**plan, "checkpoint_every_s": 0.0, "keep_checkpoints": 3})
    assert result["steps"] == 2 and result["epochs"] == 1
    assert math.isfinite(result["loss"])
    final = load_checkpoint(result["checkpoint"])  # weights_only=True inside
    assert final["step"] == 2 and final["epoch"] == 1
    assert os.path.exists(result["encoder"])
    rows = ws.store.checkpoints(result["run_id"])
    mid = [r for r in rows if r["step"] == 1 and (ws.root / r["path"]).exists()]
    assert mid, rows
    resumed = pretrain(ws, plan, resume_from=ws.root / mid[0]["path"])
    assert resumed["steps"] == 2 and resumed["epochs"] == 1
    again = load_checkpoint(resumed["checkpoint"])
    # the same permutation, views, optimizer and momentum state: the resumed run ends where the first did
    assert _params_equal(final["method"], again["method"])


def test_probe_detects_collapse_and_measures_knn():
    rng = np.random.default_rng(0)
    spread = torch.from_numpy(rng.normal(size=(200, 64))).float()
    collapsed = torch.ones(200, 64) + 1e-4 * spread
    assert collapse_std(spread)[1] > 0.8
    assert collapse_std(collapsed)[1] < 0.01
    centers = rng.normal(size=(4, 64)) * 5
    labels = np.repeat(np.arange(4), 50)
    feats = torch.from_numpy(centers[labels] + rng.normal(size=(200, 64))).float()
    assert knn_accuracy(feats, labels) > 0.95
    assert knn_accuracy(feats, rng.permutation(labels)) < 0.5
    assert knn_accuracy(feats, np.full(200, -1)) is None


def test_unknown_method_and_backbone_fail_with_the_choices(tiny_ws):
    with pytest.raises(PretrainError, match="unknown method 'simclrr'.*simclr"):
        pretrain(tiny_ws, {**TINY, "method": "simclrr"})
    with pytest.raises(PretrainError, match="unknown backbone 'resnet19'.*resnet18"):
        pretrain(tiny_ws, {**TINY, "backbone": "resnet19"})


def test_too_few_images_shrinks_the_batch_or_says_how_many(tmp_path):
    x, y = synthetic_images(6, 16)
    ws = workspace_from_arrays(tmp_path / "six", x, y)
    result = pretrain(ws, {**TINY, "batch_size": 256})
    assert result["batch_size"] == 4 and result["steps"] == 1
    assert any("shrunk from 256 to 4" in m for m in result["messages"])
    ws3 = workspace_from_arrays(tmp_path / "three", x[:3], y[:3])
    with pytest.raises(PretrainError, match="3 images are too few.*at least 4"):
        pretrain(ws3, TINY)


def test_nan_loss_stops_and_names_the_step(tiny_ws):
    with pytest.raises(PretrainError, match=r"NaN/inf at step \d+"):
        pretrain(tiny_ws, {**TINY, "epochs": 3, "lr": 1e30})


def test_full_disk_keeps_the_previous_checkpoint(tiny_ws):
    ws = tiny_ws
    small = {**TINY, "epochs": 2, "probe": False, "backbone": "resnet18-w16"}  # checkpoints of a few MB
    done = pretrain(ws, {**small, "keep_checkpoints": 2})
    first = str(ws.root / ws.store.checkpoints(done["run_id"])[0]["path"])
    before = open(first, "rb").read()
    # a file-size limit below one checkpoint: the next write fails the way a full disk does
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    assert os.path.getsize(first) > 1_000_000
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, old_limit[1]))
    try:
        with pytest.raises(PretrainError) as failure:
            pretrain(ws, small, resume_from=first)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    message = str(failure.value)
    assert "could not write checkpoint" in message and "previous checkpoint is kept" in message
    assert open(first, "rb").read() == before
    assert load_checkpoint(first)["epoch"] == 1
    assert not list(ws.checkpoints_dir.rglob("*.tmp"))


def test_cli_json_result_and_exit_codes(tiny_ws, capsys):
    from sslapp.cli import main

    code = main(["pretrain", str(tiny_ws.root), "--epochs", "1", "--batch-size", "8", "--no-probe", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert set(out) == {"job", "status", "method", "backbone", "epochs", "images_per_s", "checkpoint"}
    assert out["status"] == "done" and out["epochs"] == 1 and out["backbone"] == "resnet18-std"
    assert load_checkpoint(out["checkpoint"])["epoch"] == 1
    assert main(["pretrain", str(tiny_ws.root), "--resume", str(out["job"])]) == 2  # a done job
    assert "cannot be resumed (status done)" in capsys.readouterr().err
    jobs = len(tiny_ws.store.jobs(limit=100))
    code = main(["pretrain", str(tiny_ws.root), "--method", "nope", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and not captured.out and len(tiny_ws.store.jobs(limit=100)) == jobs  # refused, nothing queued
    assert "'nope' does not train on images; choose one of: simclr, mocov3" in captured.err
    with pytest.raises(PretrainError, match="a method for texts, not images: 'simcse'; choose one of: simclr"):
        pretrain(tiny_ws, {**TINY, "method": "simcse"})
