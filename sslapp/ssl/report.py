"""What a pretraining run tells the outside: job progress, log messages and metrics (rank 0 only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sslapp.workspace import Workspace


@dataclass
class Window:
    """A running mean of losses and an images-per-second window."""

    total: float = 0.0
    count: int = 0
    images: int = 0
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / max(self.count, 1)

    def reset(self) -> None:
        self.total, self.count, self.images, self.seconds = 0.0, 0, 0, 0.0


class Reporter:
    """Progress to the job (when there is one), the job log and the metrics table; rank 0 only."""

    def __init__(self, ws: Workspace, ctx, run_id: int | None, main: bool):
        self.ws, self.ctx, self.run_id, self.main = ws, ctx, run_id, main
        self.messages: list[str] = []

    def progress(self, force: bool = False, **values: Any) -> None:
        if self.main and self.ctx is not None:
            self.ctx.progress(force=force, **values)

    def say(self, message: str, warn: bool = False) -> None:
        if not self.main:
            return
        self.messages.append(message)
        if self.ctx is not None:
            (self.ctx.log.warning if warn else self.ctx.log.info)(message)
            self.ctx.progress(force=True, message=message)

    def metrics(self, values: dict[str, float], step: int, epoch: int) -> None:
        if self.main and self.run_id is not None:
            self.ws.store.log_metrics(values, run_id=self.run_id,
                                      job_id=self.ctx.job_id if self.ctx is not None else None,
                                      step=step, epoch=epoch)

    def stop_requested(self) -> str | None:
        return self.ctx.stop_requested() if (self.main and self.ctx is not None) else None
