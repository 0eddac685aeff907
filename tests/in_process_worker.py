"""A real worker in the test's own process (a thread), so a page under AppTest finds it alive and
launches no other; it runs `max_jobs` jobs and stops."""

from __future__ import annotations

import threading
import time

from sslapp.jobs.worker import run_worker


def start_worker_thread(ws, idle_exit_s: float = 5.0, max_jobs: int = 1) -> threading.Thread:
    worker = threading.Thread(target=run_worker, args=(ws,),
                              kwargs={"idle_exit_s": idle_exit_s, "max_jobs": max_jobs, "warm_up": False})
    worker.start()
    deadline = time.monotonic() + 10
    while not (ws.store.get_setting("worker") or {}).get("pid") and time.monotonic() < deadline:
        time.sleep(0.05)
    return worker
