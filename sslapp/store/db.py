"""`Store`: the whole workspace database, one class made of the table groups that share a connection.

Callers use `ws.store.<method>()` and never see the split: items and skips (`items.py`), classes and
labels with undo and redo (`labels.py`), the job queue (`jobs.py`), runs and their outputs (`runs.py`),
settings and ingest reports (`settings.py`); the connection and the schema migrations live in
`connection.py` and `migrations.py`. Only `sslapp/store` imports sqlite3.
"""

from __future__ import annotations

from typing import Any

from sslapp.store.connection import BUSY_TIMEOUT_MS
from sslapp.store.items import ItemsTable
from sslapp.store.jobs import JOB_JSON, JobQueue
from sslapp.store.labels import LABEL_SOURCES, LabelsTable
from sslapp.store.migrations import MIGRATIONS
from sslapp.store.runs import RUN_JSON, RunsTable
from sslapp.store.settings import SettingsTable
from sslapp.store.states import ACTIVE_JOB_STATES, FINAL_JOB_STATES, JobState

__all__ = ["ACTIVE_JOB_STATES", "BUSY_TIMEOUT_MS", "FINAL_JOB_STATES", "JOB_JSON", "LABEL_SOURCES", "MIGRATIONS",
           "RUN_JSON", "JobState", "Store"]


class Store(ItemsTable, LabelsTable, JobQueue, RunsTable, SettingsTable):
    """Typed access to one workspace database; safe to share between threads."""

    def info(self) -> dict[str, Any]:
        """A summary across the table groups (items, labels, jobs by state, the newest runs)."""
        jobs = {r[0]: r[1] for r in self.conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")}
        return {
            "items": self.count_items(),
            "labels": int(self.conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0]),
            "labels_per_class": self.label_counts(),
            "jobs": jobs,
            "latest_runs": [{k: r[k] for k in ("id", "kind", "status", "created_at", "summary")}
                            for r in self.runs(limit=5)],
        }
