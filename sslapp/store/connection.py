"""The one SQLite connection every table group shares: WAL, busy timeout, write transactions.

SQLite in WAL mode with a busy timeout, so the Streamlit app, the worker and CLI
processes can all write to one workspace at once. Every write runs inside
``BEGIN IMMEDIATE`` so a writer waits for the lock up front instead of failing
with "database is locked" when it upgrades a read lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sslapp.store.migrations import migrate

BUSY_TIMEOUT_MS = 60_000


def _now() -> float:
    return time.time()


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _row(row: sqlite3.Row | None, json_fields: Sequence[str] = ()) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    for field in json_fields:
        if field in out:
            out[field] = _loads(out[field])
    return out


class Connection:
    """One workspace database file, one connection per thread and process, migrated on open.

    The table groups (items, labels, jobs, runs, ...) subclass this and `Store` combines them,
    so they all share the same connection and transactions nest across groups.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        with self._connect() as conn:
            migrate(conn, self.path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection; a forked child opens its own instead of reusing the parent's."""
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._connect()
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock at BEGIN (waits, never deadlocks)."""
        conn = self.conn
        if conn.in_transaction:  # nested: join the outer transaction
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]
