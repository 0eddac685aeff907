"""The job queue: the UI and CLI enqueue jobs, a worker claims them, reports progress and finishes them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sslapp.store.connection import Connection, _loads, _now, _row
from sslapp.store.states import HELD_JOB_STATES, RESUMABLE_JOB_STATES, WORKER_JOB_STATES, JobState

JOB_JSON = ("params", "progress", "result")


class JobQueue(Connection):
    """The jobs table; every state change is one write transaction, so two workers never claim one job."""

    def enqueue_job(self, kind: str, params: dict[str, Any] | None = None) -> int:
        with self.transaction() as conn:
            return int(conn.execute("INSERT INTO jobs(kind, params, created_at) VALUES(?, ?, ?)",
                                    (kind, json.dumps(params or {}), _now())).lastrowid)

    def job(self, job_id: int) -> dict[str, Any] | None:
        return _row(self.conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone(), JOB_JSON)

    def jobs(self, kind: str | None = None, statuses: Sequence[str] | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM jobs WHERE 1=1", []
        if kind is not None:
            sql += " AND kind=?"
            args.append(kind)
        if statuses is not None:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args += list(statuses)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return [_row(r, JOB_JSON) for r in self.conn.execute(sql, args)]

    def claim_next_job(self, pid: int, kinds: Sequence[str] | None = None) -> dict[str, Any] | None:
        """Atomically move the oldest queued job to running for this worker."""
        with self.transaction() as conn:
            sql, args = "SELECT id FROM jobs WHERE status='queued'", []
            if kinds:
                sql += f" AND kind IN ({','.join('?' * len(kinds))})"
                args = list(kinds)
            row = conn.execute(sql + " ORDER BY id LIMIT 1", args).fetchone()
            if row is None:
                return None
            now = _now()
            conn.execute("UPDATE jobs SET status='running', pid=?, heartbeat=?, started_at=COALESCE(started_at, ?), "
                         "attempts=attempts+1, error=NULL WHERE id=?", (pid, now, now, row["id"]))
        return self.job(row["id"])

    def claim_job(self, job_id: int, pid: int) -> dict[str, Any] | None:
        """Move one specific queued job to running (the CLI runs its own job in the foreground)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None or row["status"] != JobState.QUEUED:
                return None
            now = _now()
            conn.execute("UPDATE jobs SET status='running', pid=?, heartbeat=?, started_at=COALESCE(started_at, ?), "
                         "attempts=attempts+1, error=NULL WHERE id=?", (pid, now, now, job_id))
        return self.job(job_id)

    def update_job_progress(self, job_id: int, progress: dict[str, Any]) -> None:
        """Merge `progress` into the job's progress and beat its heartbeat."""
        with self.transaction() as conn:
            row = conn.execute("SELECT progress FROM jobs WHERE id=?", (job_id,)).fetchone()
            merged = {**(_loads(row["progress"]) if row else {}), **progress}
            conn.execute("UPDATE jobs SET progress=?, heartbeat=? WHERE id=?",
                         (json.dumps(merged), _now(), job_id))

    def beat(self, job_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET heartbeat=? WHERE id=?", (_now(), job_id))

    def request_job_stop(self, job_id: int, how: str) -> bool:
        """Ask a job to stop: how='cancel' or 'pause'. A queued job stops at once."""
        target = {"cancel": (JobState.CANCELLING, JobState.CANCELLED),
                  "pause": (JobState.PAUSING, JobState.PAUSED)}[how]
        with self.transaction() as conn:
            row = conn.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                return False
            if row["status"] == JobState.QUEUED:
                conn.execute("UPDATE jobs SET status=?, finished_at=? WHERE id=?",
                             (str(target[1]), _now(), job_id))
                return True
            if row["status"] in WORKER_JOB_STATES:
                conn.execute("UPDATE jobs SET status=? WHERE id=?", (str(target[0]), job_id))
                return True
            if row["status"] in HELD_JOB_STATES and how == "cancel":
                conn.execute("UPDATE jobs SET status='cancelled', finished_at=? WHERE id=?", (_now(), job_id))
                return True
        return False

    def job_status(self, job_id: int) -> str | None:
        row = self.conn.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else row[0]

    def finish_job(self, job_id: int, status: str, result: dict[str, Any] | None = None,
                   error: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET status=?, result=?, error=?, finished_at=?, heartbeat=? WHERE id=?",
                         (status, json.dumps(result) if result is not None else None, error, _now(), _now(),
                          job_id))

    def resume_job(self, job_id: int) -> bool:
        """Queue a paused, interrupted or failed job again; its handler resumes from the last checkpoint."""
        with self.transaction() as conn:
            row = conn.execute("SELECT status, params FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None or row["status"] not in RESUMABLE_JOB_STATES:
                return False
            params = {**_loads(row["params"]), "resume": True}
            conn.execute("UPDATE jobs SET status='queued', params=?, finished_at=NULL, pid=NULL WHERE id=?",
                         (json.dumps(params), job_id))
        return True

    def mark_dead_jobs(self, stale_after_s: float, pid_alive: Callable[[int | None], bool]) -> list[int]:
        """Jobs marked running whose worker is gone (pid dead or heartbeat stale) become 'interrupted'."""
        dead = []
        now = _now()
        with self.transaction() as conn:
            for row in conn.execute("SELECT id, pid, heartbeat FROM jobs WHERE status IN "
                                    "('running', 'pausing', 'cancelling')").fetchall():
                stale = row["heartbeat"] is None or now - row["heartbeat"] > stale_after_s
                if stale or not pid_alive(row["pid"]):
                    dead.append(row["id"])
            for job_id in dead:
                conn.execute("UPDATE jobs SET status='interrupted', error=? WHERE id=?",
                             ("The worker stopped while running this job (killed or crashed); "
                              "resume it to continue from its last checkpoint.", job_id))
        return dead
