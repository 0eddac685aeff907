"""Start a worker process for a workspace on demand (the app calls this; it never trains itself)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sslapp.store.states import ACTIVE_JOB_STATES
from sslapp.workspace import Workspace

STALE_AFTER_S = 30.0  # a worker or job whose heartbeat is older than this is dead


def pid_alive(pid: int | None) -> bool:
    """True when a process with this pid runs (zombies count as dead)."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def reap_dead_jobs(ws: Workspace) -> list[int]:
    return ws.store.mark_dead_jobs(STALE_AFTER_S, pid_alive)


def worker_alive(ws: Workspace) -> bool:
    info = ws.store.get_setting("worker") or {}
    return bool(info.get("pid")) and pid_alive(info["pid"]) and time.time() - info.get("heartbeat", 0) < STALE_AFTER_S


def ensure_worker(ws: Workspace, idle_exit_s: float | None = None) -> bool:
    """Start a detached worker unless one is alive; returns True when one was started.

    It exits after `idle_exit_s` idle seconds (default SSLAPP_WORKER_IDLE_EXIT or 30 minutes);
    the app starts a new one on the next job.
    """
    if worker_alive(ws):
        return False
    if idle_exit_s is None:
        idle_exit_s = float(os.environ.get("SSLAPP_WORKER_IDLE_EXIT", 1800))
    command = [sys.executable, "-m", "sslapp", "worker", str(ws.root), "--idle-exit", str(idle_exit_s)]
    if os.environ.get("SSLAPP_WORKER_WARM_UP", "1") == "0":  # tests that never draw a map save the CPU
        command.append("--no-warm-up")
    log = open(ws.logs_dir / "worker.log", "ab")  # noqa: SIM115 - handed to the child
    subprocess.Popen(
        command,
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    log.close()
    return True


def queue_map(ws) -> int | None:
    """Queue a map of every image unless one is already queued or being drawn; the job id, or None."""
    if ws.store.jobs(kind="embed", statuses=list(ACTIVE_JOB_STATES), limit=1):
        return None
    return ws.store.enqueue_job("embed", {"clusters": "kmeans", "k": None, "provisional": False})
