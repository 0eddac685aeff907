"""What a job handler gets: its params, progress reporting, stop requests and its own log."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sslapp.workspace import Workspace


class JobStopped(Exception):
    """Raised by `JobContext.check_stop` when the user asked to cancel or pause the job."""

    def __init__(self, how: str):
        super().__init__(how)
        self.how = how  # "cancel" or "pause"


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
        return self.job["params"]

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
