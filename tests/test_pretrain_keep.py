"""What a pretraining run leaves on disk, and a steady epoch count.

A run keeps its newest checkpoint (resume needs no more) and its best encoder by the health check each
epoch ends with, plus any encoder the user pinned, a classifier was trained on or the app uses; the
rest go, files, rows and cached features alike. A minutes budget fixes its epoch count once, after
the first epoch, and keeps it.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from sslapp.bench.data import synthetic_images, workspace_from_arrays
from sslapp.features.read import PINNED_SETTING, encoders
from sslapp.jobs.worker import execute_job
from sslapp.ssl.checkpoint import load_checkpoint, publish_encoder

SMALL = "resnet18-w16"  # a quarter-width ResNet-18: real training, files of a few MB
PLAN = {"backbone": SMALL, "train_size": 16, "batch_size": 8, "init": "scratch"}


@pytest.fixture
def ws(tmp_path):
    x, y = synthetic_images(16, 16)
    ws = workspace_from_arrays(tmp_path / "ws", x, y)
    ws.store.set_setting("features.starts", ["pixels"])  # the cheap starting encoder only
    return ws


def _net():
    from sslapp.models.encoder import Encoder, EncoderConfig

    return Encoder(EncoderConfig(SMALL, 16, 16)).backbone


def _publish(ws, run_id: int, net, epoch: int, knn: float, collapsed: bool = False) -> str:
    probe = {"knn_acc": knn, "std_ratio": 0.01 if collapsed else 0.6, "collapsed": collapsed, "n_labelled": 16}
    return publish_encoder(ws, run_id, "simclr", PLAN, net, epoch, 2 * epoch, probe)


def _run_encoders(ws, run_id: int) -> dict[int, str]:
    """{epoch: path} of the run's encoder rows; every row's file exists, and no file lacks a row."""
    rows = ws.store.run_artifacts(run_id, "encoder")
    assert all((ws.root / a["path"]).exists() for a in rows), rows
    files = sorted(str(p.relative_to(ws.root)) for p in (ws.checkpoints_dir / f"run-{run_id}").glob("encoder-*"))
    assert files == sorted(a["path"] for a in rows)
    return {a["meta"]["epoch"]: a["path"] for a in rows}


def _candidate_epochs(ws, run_id: int) -> list[int]:
    return sorted(a["meta"]["epoch"] for a in encoders(ws) if a.get("run_id") == run_id)


def test_a_run_keeps_its_best_encoder_and_never_a_protected_one_less(ws):
    from sslapp.cli.common import run_job_in_foreground
    from sslapp.features.service import features_for

    run_id = ws.store.create_run("pretrain", {})
    net = _net()
    assert _publish(ws, run_id, net, 1, 0.50).endswith("encoder-e0001-s0000002.safetensors")
    kept = _publish(ws, run_id, net, 2, 0.75)  # better: epoch 1 goes
    assert list(_run_encoders(ws, run_id)) == [2] and kept.endswith("e0002-s0000004.safetensors")
    kept = _publish(ws, run_id, net, 3, 0.60)  # worse: it goes at once, epoch 2 stays the run's encoder
    assert list(_run_encoders(ws, run_id)) == [2] and kept.endswith("e0002-s0000004.safetensors")
    assert _candidate_epochs(ws, run_id) == [2]

    # pinned: stays when a better one comes, and stays a candidate beside the run's best
    e2 = next(a for a in ws.store.run_artifacts(run_id, "encoder") if a["meta"]["epoch"] == 2)
    ws.store.set_setting(PINNED_SETTING, e2["id"])
    features_for(ws, e2)  # its features are cached, as any consumer would leave them
    assert [a for a in ws.store.artifacts("embeddings") if a["meta"]["encoder_artifact_id"] == e2["id"]]
    _publish(ws, run_id, net, 4, 0.80)
    assert list(_run_encoders(ws, run_id)) == [2, 4]
    assert _candidate_epochs(ws, run_id) == [2, 4]

    # a classifier trained on epoch 4 keeps it after a better epoch 5
    e4 = next(a for a in ws.store.run_artifacts(run_id, "encoder") if a["meta"]["epoch"] == 4)
    ws.store.set_setting(PINNED_SETTING, e4["id"])
    job = run_job_in_foreground(ws, "finetune", {"mode": "linear", "propagate": "off"})
    assert job["status"] == "done", job["error"]
    assert ws.store.latest_artifact("classifier")["meta"]["encoder_artifact_id"] == e4["id"]
    ws.store.set_setting(PINNED_SETTING, None)
    stray = ws.checkpoints_dir / f"run-{run_id}" / "encoder-e0009-s0000099.safetensors"
    stray.write_bytes(b"half a file: a kill between the write and its row")
    _publish(ws, run_id, net, 5, 0.90)
    # epoch 2 is neither pinned nor best now: its file, row and cached features go; the stray file too
    assert list(_run_encoders(ws, run_id)) == [4, 5]
    assert not stray.exists()
    assert not [a for a in ws.store.artifacts("embeddings", limit=1000)
                if a["meta"]["encoder_artifact_id"] == e2["id"]]
    assert not list((ws.root / "embeddings").glob(f"enc-{e2['id']}-*"))

    # a collapsed encoder is never the best, whatever its neighbour accuracy says
    _publish(ws, run_id, net, 6, 0.99, collapsed=True)
    assert list(_run_encoders(ws, run_id)) == [4, 5]
    # without labels (no accuracy) the newest healthy one is the best
    _publish(ws, run_id, net, 7, None)
    _publish(ws, run_id, net, 8, None)
    assert list(_run_encoders(ws, run_id)) == [4, 5]  # a measured 90% beats unmeasured ones


def _wait(what, check, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_real_run_keeps_one_checkpoint_and_its_best_encoder_and_resumes(tmp_path):
    epochs = 5  # room for the pause to land after the first checkpoint, and a best to pick
    x, y = synthetic_images(32, 16)
    ws = workspace_from_arrays(tmp_path / "ws", x, y)  # labelled: each epoch's check measures kNN
    ws.store.set_setting("features.starts", ["pixels"])
    job_id = ws.store.enqueue_job("pretrain", {"epochs": epochs, "batch_size": 8, "backbone": SMALL, "seed": 2,
                                               "probe_size": 32})
    thread = threading.Thread(target=execute_job, args=(ws, ws.store.claim_job(job_id, os.getpid())))
    thread.start()
    run = lambda: ws.store.run_for_job(job_id)  # noqa: E731
    _wait("the first epoch's checkpoint", lambda: run() and (ws.store.latest_checkpoint(run_id=run()["id"]) or
                                                             {}).get("epoch", 0) >= 1)
    assert ws.store.request_job_stop(job_id, "pause")
    thread.join(120)
    assert ws.store.job_status(job_id) == "paused" and run()["status"] == "paused"
    run_dir = ws.checkpoints_dir / f"run-{run()['id']}"
    [ck] = ws.store.checkpoints(run()["id"])  # the newest only
    assert sorted(p.name for p in run_dir.glob("*.pt")) == [os.path.basename(ck["path"])]
    saved = load_checkpoint(ws.root / ck["path"])
    assert 1 <= saved["epoch"] < epochs

    assert ws.store.resume_job(job_id)
    job = execute_job(ws, ws.store.claim_job(job_id, os.getpid()))
    assert job["status"] == "done", job["error"]
    assert job["result"]["epochs"] == epochs and job["result"]["steps"] == 4 * epochs  # resumed, not started over
    assert [r["status"] for r in ws.store.runs(kind="pretrain")] == ["done"]  # the same run, not a new one
    assert f"resumed from epoch {saved['epoch']}, step {saved['step']}" in ws.job_log_path(job_id).read_text()
    [ck] = ws.store.checkpoints(run()["id"])
    assert load_checkpoint(ws.root / ck["path"])["epoch"] == epochs
    kept = _run_encoders(ws, run()["id"])
    assert len(kept) == 1  # nothing is pinned or trained on: the best alone
    accuracy = {int(m["epoch"]): m["value"] for m in ws.store.metrics(run()["id"], "probe_knn_acc")}
    assert sorted(accuracy) == list(range(1, epochs + 1))
    best = max(sorted(accuracy), key=lambda e: (accuracy[e], e))  # ties: the later epoch
    assert list(kept) == [best]
    assert job["result"]["encoder"] == str(ws.root / kept[best])
    on_disk = sorted(p.name for p in run_dir.iterdir())
    assert on_disk == sorted([os.path.basename(ck["path"]), os.path.basename(kept[best])]), on_disk


def test_a_minutes_budget_fixes_its_epoch_count_once(ws):
    job_id = ws.store.enqueue_job("pretrain", {"minutes": 0.05, "batch_size": 8, "backbone": SMALL, "probe": False})
    thread = threading.Thread(target=execute_job, args=(ws, ws.store.claim_job(job_id, os.getpid())))
    thread.start()
    seen = []
    while thread.is_alive():
        p = ws.store.job(job_id)["progress"] or {}
        if p.get("epochs"):
            seen.append((p["epoch"], p["epochs"], p.get("epochs_fixed")))
        time.sleep(0.01)
    thread.join()
    job = ws.store.job(job_id)
    assert job["status"] == "done", job["error"]
    p = job["progress"]
    seen.append((p["epoch"], p["epochs"], p.get("epochs_fixed")))
    fixed = {epochs for _, epochs, is_fixed in seen if is_fixed}
    assert len(fixed) == 1, seen  # once fixed, the count never moves
    assert all(epoch == 1 for epoch, _, is_fixed in seen if is_fixed is False), seen  # a guess only in epoch 1
    [planned] = fixed
    result = job["result"]
    assert result["epochs_planned"] == planned
    assert result["epochs"] == planned or result["stopped"] == "time budget reached", result
    assert f"epochs planned: {planned} (" in ws.job_log_path(job_id).read_text()
