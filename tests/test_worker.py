"""The job queue and the worker process, with the built-in `sleep` job (no training needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sslapp.jobs.worker import execute_job, reap_dead_jobs, run_worker


def wait_for(predicate, timeout=20.0, every=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def start_worker(ws) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sslapp", "worker", str(ws.root), "--no-warm-up",
                             "--idle-exit", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_worker_runs_a_job_to_done_and_logs_it(ws):
    job_id = ws.store.enqueue_job("sleep", {"steps": 3, "seconds_per_step": 0.01})
    assert run_worker(ws, idle_exit_s=0.2, warm_up=False) == 1
    job = ws.store.job(job_id)
    assert job["status"] == "done" and job["result"] == {"steps": 3}
    assert job["progress"]["step"] == 3
    assert "done" in ws.job_log_path(job_id).read_text()


def test_failed_job_records_error_and_worker_continues(ws):
    bad = ws.store.enqueue_job("sleep", {"steps": 3, "seconds_per_step": 0.0, "fail_at": 2})
    good = ws.store.enqueue_job("sleep", {"steps": 1, "seconds_per_step": 0.0})
    assert run_worker(ws, idle_exit_s=0.2, warm_up=False) == 2
    assert ws.store.job(bad)["status"] == "failed"
    assert "fail at step 2" in ws.store.job(bad)["error"]
    assert ws.store.job(good)["status"] == "done"


def test_unknown_job_kind_fails_with_clear_message(ws):
    job_id = ws.store.enqueue_job("no-such-kind", {})
    run_worker(ws, idle_exit_s=0.2, warm_up=False)
    assert "Unknown job kind" in ws.store.job(job_id)["error"]


def test_cancel_and_pause_resume_in_a_real_worker_process(ws):
    proc = start_worker(ws)
    try:
        job_id = ws.store.enqueue_job("sleep", {"steps": 200, "seconds_per_step": 0.05})
        wait_for(lambda: ws.store.job(job_id)["progress"].get("step", 0) >= 2)
        assert ws.store.request_job_stop(job_id, "pause")
        wait_for(lambda: ws.store.job_status(job_id) == "paused")
        paused_at = ws.store.job(job_id)["progress"]["step"]
        assert ws.store.resume_job(job_id)
        wait_for(lambda: ws.store.job(job_id)["progress"].get("step", 0) > paused_at)
        assert ws.store.request_job_stop(job_id, "cancel")
        wait_for(lambda: ws.store.job_status(job_id) == "cancelled")
        assert ws.store.job(job_id)["progress"]["step"] < 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_sigkilled_worker_leaves_a_resumable_interrupted_job(ws):
    proc = start_worker(ws)
    job_id = ws.store.enqueue_job("sleep", {"steps": 40, "seconds_per_step": 0.05})
    wait_for(lambda: ws.store.job(job_id)["progress"].get("step", 0) >= 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert ws.store.job_status(job_id) == "running"  # nothing updated it
    assert reap_dead_jobs(ws) == [job_id]
    job = ws.store.job(job_id)
    assert job["status"] == "interrupted" and "resume" in job["error"]
    killed_at = job["progress"]["step"]
    assert ws.store.resume_job(job_id)
    run_worker(ws, idle_exit_s=0.2, warm_up=False)
    job = ws.store.job(job_id)
    assert job["status"] == "done" and job["attempts"] == 2
    assert killed_at >= 3


def test_only_one_worker_per_workspace(ws):
    proc = start_worker(ws)
    try:
        wait_for(lambda: (ws.store.get_setting("worker") or {}).get("pid") == proc.pid)
        assert run_worker(ws, idle_exit_s=0.1, warm_up=False) == 0  # the lock is held
    finally:
        proc.terminate()
        proc.wait(10)


def test_cancel_of_queued_job_is_immediate(ws):
    job_id = ws.store.enqueue_job("sleep", {"steps": 1})
    assert ws.store.request_job_stop(job_id, "cancel")
    assert ws.store.job_status(job_id) == "cancelled"
    assert ws.store.claim_next_job(os.getpid()) is None


def test_foreground_execution_used_by_the_cli(ws):
    job_id = ws.store.enqueue_job("sleep", {"steps": 2, "seconds_per_step": 0.0})
    job = ws.store.claim_job(job_id, os.getpid())
    assert execute_job(ws, job)["status"] == "done"
