"""The job states, named once: the database, worker, CLI and pages all compare against these.

A `StrEnum`, so a state equals its plain string ("queued") as stored in the `jobs.status`
column and reads back from the database as a plain `str`. Deliberately imports neither sqlite3
nor torch, so any page or tool can use it cheaply.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job is in its life: queued -> running -> done, or stopped on the way."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSING = "pausing"  # a pause was asked; the worker stops at its next checkpoint
    CANCELLING = "cancelling"  # a cancel was asked; the worker stops soon
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its worker died (killed, crashed); resumable


# Waiting for or held by a worker: a page polls these, and a new job of the kind waits.
ACTIVE_JOB_STATES: tuple[JobState, ...] = (JobState.QUEUED, JobState.RUNNING, JobState.CANCELLING,
                                           JobState.PAUSING)
# A worker process owns the job right now (it may die: then the job becomes interrupted).
WORKER_JOB_STATES: tuple[JobState, ...] = (JobState.RUNNING, JobState.PAUSING, JobState.CANCELLING)
# Finished for good unless resumed by hand.
FINAL_JOB_STATES: tuple[JobState, ...] = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
# Stopped part-way but keeping a checkpoint: resumable, and they still block starting a fresh job.
HELD_JOB_STATES: tuple[JobState, ...] = (JobState.PAUSED, JobState.INTERRUPTED)
# States `Store.resume_job` puts back in the queue.
RESUMABLE_JOB_STATES: tuple[JobState, ...] = (JobState.PAUSED, JobState.INTERRUPTED, JobState.FAILED,
                                              JobState.CANCELLED)
# Stopped without success: the previous result (e.g. the classifier) stays in place.
STOPPED_JOB_STATES: tuple[JobState, ...] = (JobState.CANCELLED, JobState.PAUSED, JobState.INTERRUPTED)
