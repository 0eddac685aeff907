"""A trivial job used by tests of the worker itself: it sleeps in small steps and can be stopped."""

from __future__ import annotations

import time
from typing import Any

from sslapp.jobs.context import JobContext


def run_sleep_job(ctx: JobContext) -> dict[str, Any]:
    steps = int(ctx.params.get("steps", 10))
    start = int(ctx.job["progress"].get("step", 0)) if ctx.resuming else 0
    for step in range(start, steps):
        ctx.check_stop()
        time.sleep(float(ctx.params.get("seconds_per_step", 0.1)))
        ctx.progress(force=True, step=step + 1, total=steps)
        if ctx.params.get("fail_at") == step + 1:
            raise RuntimeError(f"asked to fail at step {step + 1}")
    return {"steps": steps}
