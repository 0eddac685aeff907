"""Faults that real use brings, on real processes: a killed worker, two labelling processes, a full disk.

Each test writes a small JSON summary to test-artifacts/faults/ (the figures in docs/reliability.md).
The Streamlit-restart fault needs the browser and lives in tests/browser/test_server_restart.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslapp.jobs.worker import reap_dead_jobs
from sslapp.workspace import open_workspace

ROOT = Path(__file__).resolve().parents[1]
SUMMARIES = ROOT / "test-artifacts" / "faults"
SEED = 20261125
# The smallest real pretraining: 32 images cached at 16 px, ResNet-18 (standard stem) at 16 px.
TINY_PRETRAIN = {"method": "simclr", "backbone": "resnet18-std", "batch_size": 8, "train_size": 16,
                 "probe": False, "device": "cpu", "threads": 1, "seed": 0}


# -- helpers ----------------------------------------------------------------------------------
def wait_for(predicate, timeout=120.0, every=0.05, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what} not met within {timeout:.0f} s")


def write_images(folder: Path, n: int, seed: int = 0) -> Path:
    """`n` distinct little PNGs: a flat colour with a block of another colour."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        a = np.empty((24, 24, 3), np.uint8)
        a[...] = rng.integers(0, 256, 3)
        y, x = rng.integers(0, 16, 2)
        a[y:y + 8, x:x + 8] = rng.integers(0, 256, 3)
        Image.fromarray(a).save(folder / f"img{i:03d}.png")
    return folder


def tiny_workspace(root: Path, images: Path, n: int = 32):
    """`n` images cached at 16 px; the pixel start is the only starting encoder, so the comparison a
    finished pretraining makes with the other embeddings costs nothing (ImageNet's has its own tests)."""
    from sslapp.ingest.ingest import ingest

    ws = open_workspace(root, cache_size=16)
    report = ingest(ws, [write_images(images, n)], workers=1)
    assert report["added"] == n
    ws.store.set_setting("features.starts", ["pixels"])
    return ws


def start_worker(ws, log: Path, limit_file_bytes: int | None = None) -> subprocess.Popen:
    def limit():  # runs in the child only: a "disk" that holds files up to this size
        if limit_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sslapp", "worker", str(ws.root), "--no-warm-up", "--idle-exit", "60"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"},
            preexec_fn=limit if limit_file_bytes is not None else None)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def label_map(ws) -> dict[int, str]:
    return {r["item_id"]: r["class_name"] for r in ws.store.labels()}


def save_summary(name: str, summary: dict) -> None:
    SUMMARIES.mkdir(parents=True, exist_ok=True)
    (SUMMARIES / f"{name}.json").write_text(json.dumps(summary, indent=2))


def file_hashes(folder: Path, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob(pattern)) if p.is_file()}


# -- SIGKILL the worker at seeded random points of a pretraining job ----------------------------
# Where each kill lands, in a seeded random order with seeded random delays: while the worker
# starts and loads its checkpoint, and while a checkpoint file is being written (its .tmp exists).
# Events, not wall-clock times, pick the moment, so every kill point is reached on a fast or a slow
# machine alike. Each point once: the second kill also kills a resumed run. No kill between steps:
# test_worker kills a worker mid-job, test_pretrain resumes every method from its checkpoint step
# for step, and each kill here costs a worker's start (torch's import) on CI's two cores.
KILL_POINTS = ["setup", "checkpoint-write"]
STEPS_PER_EPOCH = 4  # 32 images, batches of 8


def _temp_checkpoints(ws) -> set[Path]:
    return set(ws.checkpoints_dir.rglob("*.pt.tmp"))


def _wait_kill_point(ws, job_id: int, attempt: int, point: str, rng: random.Random) -> float:
    """Block until the worker reaches `point` in this attempt, then a seeded random moment more."""
    wait_for(lambda: (ws.store.job(job_id) or {}).get("attempts", 0) >= attempt, what="claim", timeout=120)
    if point == "setup":
        delay = rng.uniform(0.0, 1.5)
    else:
        stale = _temp_checkpoints(ws)  # left by an earlier kill
        wait_for(lambda: bool(_temp_checkpoints(ws) - stale), what="a checkpoint write",
                 timeout=180, every=0.002)
        delay = rng.uniform(0.0, 0.05)
    time.sleep(delay)
    return delay


def test_pretraining_survives_sigkill_at_random_points(tmp_path):
    import torch

    from sslapp.models.encoder import load_encoder

    rng = random.Random(SEED)
    points = KILL_POINTS[:]
    rng.shuffle(points)
    ws = tiny_workspace(tmp_path / "ws", tmp_path / "images")
    items = [i for i, _ in ws.store.item_ids_and_cache_index()]
    cat = ws.store.class_id("cat", create=True)
    ws.store.set_labels(items[:4], cat)
    expected = label_map(ws)
    epochs = 8  # enough steps that no kill point can come after the end, even on a fast machine
    job_id = ws.store.enqueue_job("pretrain", {**TINY_PRETRAIN, "epochs": epochs})  # a checkpoint each epoch
    log = ws.job_log_path(job_id)
    seen: dict[str, str] = {}  # checkpoint file -> sha256 when first seen; files never change after
    kills: list[dict] = []
    worker_log = tmp_path / "worker.log"

    for k, point in enumerate(points):
        stale = _temp_checkpoints(ws)
        proc = start_worker(ws, worker_log)
        try:
            delay = _wait_kill_point(ws, job_id, k + 1, point, rng)
            assert ws.store.job_status(job_id) == "running", "the job ended before the kill; make it longer"
            progress = ws.store.job(job_id)["progress"]
            writing = bool(_temp_checkpoints(ws) - stale)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            stop(proc)
        # the worker is gone mid-job: it is detected and can be resumed
        assert ws.store.job_status(job_id) == "running"
        assert reap_dead_jobs(ws) == [job_id]
        assert ws.store.job_status(job_id) == "interrupted"
        run = ws.store.run_for_job(job_id)
        ckpts = ws.store.checkpoints(run["id"]) if run else []
        existing = [c for c in ckpts if (ws.root / c["path"]).exists()]
        latest = ckpts[-1] if ckpts else None
        if latest is not None:
            assert (ws.root / latest["path"]).exists(), "the newest registered checkpoint is missing"
            state = torch.load(ws.root / latest["path"], map_location="cpu", weights_only=True)
            assert (state["epoch"], state["step"]) == (latest["epoch"], latest["step"])
            # at most the current epoch is lost: the checkpoint is no older than the epoch that ran
            assert latest["epoch"] >= int(progress.get("epoch", 1)) - 1
        for c in existing:  # a checkpoint never changes once written
            digest = sha256(ws.root / c["path"])
            assert seen.setdefault(c["path"], digest) == digest, f"{c['path']} changed after it was written"
        encoder = ws.store.latest_artifact("encoder")
        if encoder is not None:
            load_encoder(ws.root / encoder["path"])
        # labels given before (and during) training are intact; label some more while it is down
        assert label_map(ws) == expected
        ws.store.set_labels([items[4 + k]], cat)
        expected = label_map(ws)
        kills.append({"kill": k + 1, "point": point, "after_s": round(delay, 3), "checkpoint_being_written": writing,
                      "progress": {key: progress.get(key) for key in ("epoch", "global_step")},
                      "resume_from": latest and {"epoch": latest["epoch"], "step": latest["step"]},
                      "checkpoints_on_disk": len(existing)})
        assert ws.store.resume_job(job_id)

    # the last resume runs through `sslapp worker --max-jobs 1`, which returns once the job is over: here,
    # in this process (torch is loaded already; each worker process above paid 6-8 CPU-s to import it)
    from sslapp.cli import main

    assert main(["worker", str(ws.root), "--no-warm-up", "--max-jobs", "1"]) == 0, log.read_text()[-2000:]
    job = ws.store.job(job_id)
    assert job["status"] == "done", job["error"]
    # resumed, never started over nor run twice: exactly the steps of one uninterrupted run
    assert job["result"]["epochs"] == epochs and job["result"]["steps"] == epochs * STEPS_PER_EPOCH
    assert job["attempts"] == len(points) + 1
    assert label_map(ws) == expected and len(expected) == 4 + len(points)
    text = log.read_text()
    for kill in kills:  # every resume started from the newest checkpoint at the time of the kill
        if kill["resume_from"]:
            assert f"resumed from epoch {kill['resume_from']['epoch']}, step {kill['resume_from']['step']}" in text
    run = ws.store.run_for_job(job_id)
    assert run["status"] == "done"
    for c in ws.store.checkpoints(run["id"]):
        path = ws.root / c["path"]
        if path.exists() and c["path"] in seen:
            assert sha256(path) == seen[c["path"]]
    load_encoder(ws.root / ws.store.latest_artifact("encoder")["path"])
    leftovers = sorted(str(p.relative_to(ws.root)) for p in ws.checkpoints_dir.rglob("*.tmp"))
    save_summary("sigkill", {"seed": SEED, "kills": kills, "kills_survived": len(kills),
                             "labels_before": 4, "labels_after": len(expected), "labels_lost": 0,
                             "final": {k: job["result"][k] for k in ("epochs", "steps", "elapsed_s")},
                             "temp_files_left": leftovers})


# -- two processes label at once -----------------------------------------------------------------
LABELLER = textwrap.dedent("""
    import json, sys, time
    from sslapp.store import Store
    db, who, start, ids = sys.argv[1], sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4])
    store = Store(db)
    while time.time() < start:
        time.sleep(0.001)
    errors, t0, began = [], time.perf_counter(), time.time()
    for n, item in enumerate(ids):
        try:  # both processes create the same classes and label one item per action, like two tabs
            store.set_labels([item], store.class_id(("cat", "dog")[n % 2], create=True))
        except Exception as exc:
            errors.append(repr(exc))
    print(json.dumps({"who": who, "errors": errors, "seconds": time.perf_counter() - t0, "began": began,
                      "ended": time.time()}))
""")


def test_two_processes_label_at_once_and_nothing_is_lost(ws):
    rows = [{"source": f"img{i:03d}.png", "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "width": 8,
             "height": 8, "cache_index": i} for i in range(400)]
    ids = ws.store.add_items(rows)
    start = time.time() + 4.0  # both start labelling at the same moment, after their imports
    procs = [subprocess.Popen([sys.executable, "-c", LABELLER, str(ws.store.path), who, str(start),
                               json.dumps(part)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for who, part in (("a", ids[0::2]), ("b", ids[1::2]))]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "database is locked" not in err
        outs.append(json.loads(out))
    for o in outs:
        assert o["errors"] == [], o["errors"][:3]
    assert max(o["began"] for o in outs) < min(o["ended"] for o in outs), "the two labellers did not overlap"
    labels = ws.store.labels()
    assert len(labels) == 400
    assert sorted(r["item_id"] for r in labels) == sorted(ids)
    assert {r["class_name"] for r in labels} == {"cat", "dog"}
    assert ws.store.label_counts() == {"cat": 200, "dog": 200}
    history = ws.store.label_history(limit=1000)
    assert len(history) == 400 and len({h["action_id"] for h in history}) == 400  # 400 undoable actions
    save_summary("concurrent_labels", {"processes": 2, "labels_each": 200, "stored": len(labels),
                                       "errors": 0, "seconds": [round(o["seconds"], 2) for o in outs]})


# -- a full disk while a checkpoint is written ------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 400 MB tmpfs (as root), else a plain folder and a per-file size limit.

    SSLAPP_TEST_DISK=rlimit forces the fallback, to test it where mounting works.
    """
    mount = tmp_path / "disk"
    mount.mkdir()
    ok = os.environ.get("SSLAPP_TEST_DISK") != "rlimit" and os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400m", "tmpfs", str(mount)],
                                              capture_output=True).returncode == 0
    yield mount, ("tmpfs" if ok else "rlimit")
    if ok:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill_disk(folder: Path, leave_bytes: int) -> Path:
    """Fill the filesystem of `folder` with a ballast file, leaving about `leave_bytes` free."""
    ballast = folder / "ballast.bin"
    block = b"\0" * (1 << 20)
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass
    size = ballast.stat().st_size
    os.truncate(ballast, max(0, size - leave_bytes))
    return ballast


def test_full_disk_during_a_checkpoint_fails_clearly_and_keeps_the_previous_state(tmp_path, small_disk):
    from sslapp.cli.common import run_job_in_foreground
    from sslapp.models.encoder import load_encoder

    disk, how = small_disk
    ws = tiny_workspace(disk / "ws", tmp_path / "images")
    items = [i for i, _ in ws.store.item_ids_and_cache_index()]
    ws.store.set_labels(items[:6], ws.store.class_id("cat", create=True))
    first = run_job_in_foreground(ws, "pretrain", {**TINY_PRETRAIN, "epochs": 1})
    assert first["status"] == "done", first["error"]
    before = file_hashes(ws.checkpoints_dir, "*")
    assert any(p.endswith(".pt") for p in before) and any(p.endswith(".safetensors") for p in before)
    labels = label_map(ws)
    encoder_before = ws.store.latest_artifact("encoder")

    ballast = fill_disk(disk, 2 << 20) if how == "tmpfs" else None
    job_id = ws.store.enqueue_job("pretrain", {**TINY_PRETRAIN, "epochs": 1})
    if ballast is not None:  # the whole filesystem is full: run the job right here
        run_job_in_foreground(ws, "pretrain", {}, job_id=job_id)
    else:  # no tmpfs: a worker that may not write files over 16 MB (a checkpoint is ~90 MB)
        proc = start_worker(ws, tmp_path / "worker.log", limit_file_bytes=16 << 20)
        try:
            wait_for(lambda: ws.store.job_status(job_id) in ("done", "failed"), timeout=300, what="job end")
        finally:
            stop(proc)
    job = ws.store.job(job_id)
    assert job["status"] == "failed"
    assert "disk is full" in job["error"] and "previous checkpoint is kept" in job["error"], job["error"]
    # the previous state is intact: files byte for byte, labels, the encoder the app uses
    after = file_hashes(ws.checkpoints_dir, "*")
    assert {k: v for k, v in after.items() if k in before} == before
    assert not [p for p in after if p.endswith(".tmp")], "a half-written file was left behind"
    assert label_map(ws) == labels
    assert ws.store.latest_artifact("encoder")["path"] == encoder_before["path"]
    load_encoder(ws.root / encoder_before["path"])
    assert ws.store.run_for_job(job_id)["status"] == "failed"

    # space comes back: the same job resumes and finishes
    if ballast is not None:
        ballast.unlink()
    assert ws.store.resume_job(job_id)
    run_job_in_foreground(ws, "pretrain", {}, job_id=job_id)
    assert ws.store.job(job_id)["status"] == "done", ws.store.job(job_id)["error"]
    assert label_map(ws) == labels
    save_summary("full_disk_checkpoint", {"mode": how, "error": job["error"], "previous_files_intact": len(before),
                                          "labels_lost": 0, "resumed_after_freeing_space": True})
