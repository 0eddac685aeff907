"""What a job handler gets: its params, progress reporting, stop requests and its own log."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sslapp.workspace import Workspace


class JobStopped(Exception):
    """Raised by `JobContext.check_stop` when the user asked to cancel or pause the job."""

    def __init__(self, how: str):
        super().__init__(how)
        self.how = how  # "cancel" or "pause"


@dataclass
class Run:
    """The run a job records: its id, and the summary the job body fills (written when it ends well)."""

    id: int
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobContext:
    workspace: Workspace
    job: dict[str, Any]
    log: logging.Logger
    _last_progress: float = field(default=0.0)

    @property
    def job_id(self) -> int:
        return int(self.job["id"])

    @property
    def params(self) -> dict[str, Any]:
        """The job's params over its kind's registered defaults (`sslapp.jobs.registry.JOBS`)."""
        from sslapp.jobs.registry import JOBS

        entry = JOBS.get(self.job["kind"])
        return {**(entry.defaults if entry else {}), **(self.job["params"] or {})}

    @property
    def resuming(self) -> bool:
        return bool(self.params.get("resume"))

    def progress(self, force: bool = False, **values: Any) -> None:
        """Report progress (epoch, step, loss, images_per_s, eta_s, message...); throttled to 4/s."""
        now = time.monotonic()
        if force or now - self._last_progress > 0.25:
            self.workspace.store.update_job_progress(self.job_id, values)
            self._last_progress = now

    def stop_requested(self) -> str | None:
        """'cancel' or 'pause' when the user asked for it, else None. Cheap: one indexed read."""
        status = self.workspace.store.job_status(self.job_id)
        return {"cancelling": "cancel", "pausing": "pause"}.get(status or "")

    def check_stop(self) -> None:
        how = self.stop_requested()
        if how:
            raise JobStopped(how)

    @contextmanager
    def run(self, kind: str, params: dict[str, Any], run_id: int | None = None) -> Iterator[Run]:
        """Record the body as a run, so every job keeps its run row the same way.

        A new run of `kind` with `params`, or the existing `run_id` (a resumed job continues its own
        run) set back to running. Normal exit: "done" with `run.summary`; `JobStopped`: "cancelled"
        or "paused"; any other exception: "failed" with {"error": message}. Exceptions re-raise.
        """
        store = self.workspace.store
        if run_id is None:
            run_id = store.create_run(kind, params, job_id=self.job_id)
        else:
            store.update_run(run_id, status="running")
        run = Run(id=int(run_id))
        try:
            yield run
        except JobStopped as stop:
            # as the job row ends (`sslapp.jobs.worker.execute_job`)
            store.update_run(run.id, status="cancelled" if stop.how == "cancel" else "paused")
            raise
        except BaseException as exc:
            store.update_run(run.id, status="failed", summary={"error": str(exc) or exc.__class__.__name__})
            raise
        store.update_run(run.id, status="done", summary=run.summary)
