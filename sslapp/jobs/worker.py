"""The worker process: claims queued jobs one at a time and runs their handlers.

A heartbeat thread keeps the job's and the worker's heartbeat fresh, so a killed worker
is detected by a stale heartbeat or a dead pid, and its job can be resumed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import traceback
from typing import Any

from sslapp.jobs.context import JobContext, JobStopped
from sslapp.jobs.launcher import reap_dead_jobs
from sslapp.jobs.registry import handler_for, warm_ups
from sslapp.workspace import Workspace

HEARTBEAT_S = 2.0
POLL_S = 0.5


def _job_logger(ws: Workspace, job_id: int) -> tuple[logging.Logger, logging.Handler]:
    log = logging.getLogger(f"sslapp.job.{job_id}")
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(ws.job_log_path(job_id), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return log, handler


class _Heartbeat(threading.Thread):
    """Beats the running job every HEARTBEAT_S seconds, independent of the training loop."""

    def __init__(self, ws: Workspace, job_id: int, as_worker: bool):
        super().__init__(daemon=True)
        self.ws, self.job_id, self.as_worker, self.done = ws, job_id, as_worker, threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_S):
            try:
                self.ws.store.beat(self.job_id)
                if self.as_worker:
                    self.ws.store.set_setting("worker", {"pid": os.getpid(), "heartbeat": time.time()})
            except Exception:  # a busy database must not kill the job; the next beat retries
                pass


def execute_job(ws: Workspace, job: dict[str, Any], as_worker: bool = False) -> dict[str, Any]:
    """Run one claimed job to its end and record the outcome; returns the final job row."""
    job_id = int(job["id"])
    log, handler = _job_logger(ws, job_id)
    beat = _Heartbeat(ws, job_id, as_worker)
    beat.start()
    log.info("job %s (%s) started in pid %s, params %s", job_id, job["kind"], os.getpid(), job["params"])
    try:
        result = handler_for(job["kind"])(JobContext(workspace=ws, job=job, log=log))
        ws.store.finish_job(job_id, "done", result=result)
        log.info("job %s done: %s", job_id, result)
    except JobStopped as stop:
        status = "cancelled" if stop.how == "cancel" else "paused"
        ws.store.finish_job(job_id, status, error=None)
        log.info("job %s %s on request", job_id, status)
    except Exception as exc:  # the job failed; the worker lives on
        message = str(exc) or exc.__class__.__name__
        ws.store.finish_job(job_id, "failed", error=message)
        log.error("job %s failed: %s\n%s", job_id, message, traceback.format_exc())
    finally:
        beat.done.set()
        log.removeHandler(handler)
        handler.close()
    return ws.store.job(job_id) or {}


def _warm_up() -> None:
    """Run the registry's warm-ups (e.g. UMAP's numba compile) while idle, so first uses are fast.

    A warm-up only saves time later: its failure is logged and the worker carries on.
    """
    log = logging.getLogger("sslapp.worker")
    try:
        loaded = warm_ups()
    except Exception:
        log.exception("loading the warm-ups failed")
        return
    for name, func in loaded:
        try:
            func()
        except Exception:
            log.exception("warm-up %s failed", name)


def _acquire_lock(ws: Workspace):
    lock = open(ws.root / "worker.lock", "w")  # noqa: SIM115 - held for the worker's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def run_worker(ws: Workspace, idle_exit_s: float | None = None, max_jobs: int | None = None,
               warm_up: bool = True) -> int:
    """Run jobs until idle for `idle_exit_s` (None: forever). Returns the number of jobs run.

    Only one worker runs per workspace (a file lock), so jobs never fight over a device.
    """
    lock = _acquire_lock(ws)
    if lock is None:
        logging.getLogger("sslapp.worker").info("another worker already serves %s", ws.root)
        return 0
    pid = os.getpid()
    ws.store.set_setting("worker", {"pid": pid, "started_at": time.time(), "heartbeat": time.time()})
    ran, idle_since, last_beat = 0, time.monotonic(), 0.0
    try:
        while max_jobs is None or ran < max_jobs:
            if time.monotonic() - last_beat > HEARTBEAT_S:
                ws.store.set_setting("worker", {"pid": pid, "heartbeat": time.time()})
                reap_dead_jobs(ws)
                last_beat = time.monotonic()
            job = ws.store.claim_next_job(pid)
            if job is None:
                if warm_up:  # only while idle, so the warm-up never slows a job down
                    threading.Thread(target=_warm_up, daemon=True).start()
                    warm_up = False
                if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                    break
                time.sleep(POLL_S)
                continue
            execute_job(ws, job, as_worker=True)
            ran += 1
            idle_since = time.monotonic()
    finally:
        ws.store.set_setting("worker", {"pid": None, "heartbeat": time.time()})
        lock.close()
    return ran
