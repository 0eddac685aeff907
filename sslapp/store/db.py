"""The only module that talks SQL.

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_MS = 60_000
LABEL_SOURCES = ("user", "imported", "propagated")
ACTIVE_JOB_STATES = ("queued", "running", "cancelling", "pausing")
FINAL_JOB_STATES = ("done", "failed", "cancelled")

# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        cache_index INTEGER NOT NULL UNIQUE,
        original TEXT,
        added_at REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'active'
    );
    CREATE TABLE classes (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE labels (
        item_id INTEGER PRIMARY KEY REFERENCES items(id),
        class_id INTEGER NOT NULL REFERENCES classes(id),
        source TEXT NOT NULL CHECK (source IN ('user', 'imported', 'propagated')),
        updated_at REAL NOT NULL
    );
    CREATE INDEX labels_class ON labels(class_id);
    CREATE TABLE label_history (
        id INTEGER PRIMARY KEY,
        action_id INTEGER NOT NULL,
        action TEXT NOT NULL,
        item_id INTEGER NOT NULL,
        old_class_id INTEGER,
        old_source TEXT,
        new_class_id INTEGER,
        new_source TEXT,
        created_at REAL NOT NULL,
        undone INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX label_history_action ON label_history(action_id);
    CREATE TABLE skipped (
        item_id INTEGER PRIMARY KEY REFERENCES items(id),
        created_at REAL NOT NULL
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'queued',
        progress TEXT NOT NULL DEFAULT '{}',
        result TEXT,
        error TEXT,
        heartbeat REAL,
        pid INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL
    );
    CREATE INDEX jobs_status ON jobs(status);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        job_id INTEGER REFERENCES jobs(id),
        kind TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'running',
        summary TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE TABLE checkpoints (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        epoch INTEGER NOT NULL,
        step INTEGER NOT NULL,
        path TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE metrics (
        id INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES runs(id),
        job_id INTEGER REFERENCES jobs(id),
        step INTEGER,
        epoch INTEGER,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX metrics_run ON metrics(run_id, name);
    CREATE TABLE artifacts (
        id INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES runs(id),
        kind TEXT NOT NULL,
        path TEXT NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE INDEX artifacts_kind ON artifacts(kind, id);
    CREATE TABLE predictions (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        item_id INTEGER NOT NULL REFERENCES items(id),
        class_id INTEGER NOT NULL REFERENCES classes(id),
        confidence REAL NOT NULL,
        PRIMARY KEY (run_id, item_id)
    );
    CREATE TABLE suggestions (
        id INTEGER PRIMARY KEY,
        batch INTEGER NOT NULL,
        item_id INTEGER NOT NULL REFERENCES items(id),
        rank INTEGER NOT NULL,
        strategy TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX suggestions_batch ON suggestions(batch, rank);
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE ingest_reports (
        id INTEGER PRIMARY KEY,
        created_at REAL NOT NULL,
        report TEXT NOT NULL
    );
    """,
]


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


JOB_JSON = ("params", "progress", "result")
RUN_JSON = ("params", "summary")


class Store:
    """Typed access to one workspace database; safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        with self._connect() as conn:
            self._migrate(conn)

    # -- connection and transactions -------------------------------------------------
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

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} was written by a newer sslapp (schema v{version}, this one knows "
                    f"v{len(MIGRATIONS)}); upgrade sslapp to open it.")
            for number in range(version, len(MIGRATIONS)):
                for statement in _split_sql(MIGRATIONS[number]):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    # -- settings --------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def set_setting(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO settings(key, value) VALUES(?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, json.dumps(value)))

    # -- items -----------------------------------------------------------------------
    def known_hashes(self, hashes: Iterable[str]) -> set[str]:
        hashes = list(hashes)
        found: set[str] = set()
        for start in range(0, len(hashes), 500):
            chunk = hashes[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.conn.execute(
                f"SELECT sha256 FROM items WHERE sha256 IN ({marks})", chunk))
        return found

    def next_cache_index(self) -> int:
        row = self.conn.execute("SELECT COALESCE(MAX(cache_index) + 1, 0) FROM items").fetchone()
        return int(row[0])

    def add_items(self, rows: Sequence[dict[str, Any]], conn: sqlite3.Connection | None = None) -> list[int]:
        """Insert items (source, sha256, width, height, cache_index, original); returns their ids."""
        ids = []
        with self.transaction() as tx:
            for r in rows:
                cur = tx.execute(
                    "INSERT INTO items(source, sha256, width, height, cache_index, original, added_at) "
                    "VALUES(?, ?, ?, ?, ?, ?, ?)",
                    (r["source"], r["sha256"], r["width"], r["height"], r["cache_index"],
                     r.get("original"), _now()))
                ids.append(int(cur.lastrowid))
        return ids

    def count_items(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM items WHERE status='active'").fetchone()[0])

    def items(self, limit: int | None = None, offset: int = 0,
              ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Items with their current label (class name, source), ordered by id."""
        sql = ("SELECT i.*, c.name AS label, l.source AS label_source FROM items i "
               "LEFT JOIN labels l ON l.item_id=i.id LEFT JOIN classes c ON c.id=l.class_id "
               "WHERE i.status='active'")
        args: list[Any] = []
        if ids is not None:
            ids = list(ids)
            if not ids:
                return []
            by_id = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                q = sql + f" AND i.id IN ({','.join('?' * len(chunk))})"
                by_id.update({r["id"]: dict(r) for r in self.conn.execute(q, chunk)})
            return [by_id[i] for i in ids if i in by_id]
        sql += " ORDER BY i.id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return [dict(r) for r in self.conn.execute(sql, args)]

    def item(self, item_id: int) -> dict[str, Any] | None:
        rows = self.items(ids=[item_id])
        return rows[0] if rows else None

    def item_ids_and_cache_index(self) -> list[tuple[int, int]]:
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT id, cache_index FROM items WHERE status='active' ORDER BY id")]

    def find_items_by_source(self, source: str) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM items WHERE source=? AND status='active'", (source,))]

    # -- classes ---------------------------------------------------------------------
    def classes(self) -> list[dict[str, Any]]:
        """Classes in creation order with their label counts."""
        return [dict(r) for r in self.conn.execute(
            "SELECT c.id, c.name, c.created_at, COUNT(l.item_id) AS n_labels FROM classes c "
            "LEFT JOIN labels l ON l.class_id=c.id GROUP BY c.id ORDER BY c.id")]

    def class_id(self, name: str, create: bool = False) -> int | None:
        name = name.strip()
        row = self.conn.execute("SELECT id FROM classes WHERE name=?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            return None
        if not name:
            raise ValueError("A class name cannot be empty.")
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM classes WHERE name=?", (name,)).fetchone()
            if row is not None:
                return int(row[0])
            return int(conn.execute("INSERT INTO classes(name, created_at) VALUES(?, ?)",
                                    (name, _now())).lastrowid)

    def rename_class(self, class_id: int, new_name: str) -> None:
        new_name = new_name.strip()
        if not new_name:
            raise ValueError("A class name cannot be empty.")
        with self.transaction() as conn:
            clash = conn.execute("SELECT id FROM classes WHERE name=? AND id!=?", (new_name, class_id)).fetchone()
            if clash is not None:
                raise ValueError(f"A class named {new_name!r} already exists; merge the classes instead.")
            conn.execute("UPDATE classes SET name=? WHERE id=?", (new_name, class_id))

    def merge_classes(self, source_id: int, target_id: int) -> int:
        """Move every label of `source_id` to `target_id` (undoable), then drop the source class."""
        if source_id == target_id:
            return 0
        with self.transaction():
            items = [r[0] for r in self.conn.execute("SELECT item_id FROM labels WHERE class_id=?", (source_id,))]
            self.set_labels(items, target_id, source=None, action="merge")
            self.conn.execute("DELETE FROM classes WHERE id=?", (source_id,))
        return len(items)

    def delete_class(self, class_id: int) -> int:
        """Remove the class and its labels; the label history keeps what they were."""
        with self.transaction():
            items = [r[0] for r in self.conn.execute("SELECT item_id FROM labels WHERE class_id=?", (class_id,))]
            self.remove_labels(items, action="delete-class")
            self.conn.execute("DELETE FROM predictions WHERE class_id=?", (class_id,))
            self.conn.execute("DELETE FROM classes WHERE id=?", (class_id,))
        return len(items)

    # -- labels ----------------------------------------------------------------------
    def _next_action_id(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(action_id), 0) + 1 FROM label_history").fetchone()[0])

    def set_labels(self, item_ids: Sequence[int], class_id: int, source: str | None = "user",
                   action: str = "label") -> int:
        """Label items now (one undoable action). `source=None` keeps each item's current source."""
        if source is not None and source not in LABEL_SOURCES:
            raise ValueError(f"label source must be one of {LABEL_SOURCES}, not {source!r}")
        item_ids = list(dict.fromkeys(int(i) for i in item_ids))
        if not item_ids:
            return 0
        now = _now()
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM classes WHERE id=?", (class_id,)).fetchone() is None:
                raise ValueError(f"No class with id {class_id}.")
            action_id = self._next_action_id()
            for item_id in item_ids:
                old = conn.execute("SELECT class_id, source FROM labels WHERE item_id=?", (item_id,)).fetchone()
                new_source = source or (old["source"] if old else "user")
                conn.execute(
                    "INSERT INTO label_history(action_id, action, item_id, old_class_id, old_source, "
                    "new_class_id, new_source, created_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                    (action_id, action, item_id, old["class_id"] if old else None,
                     old["source"] if old else None, class_id, new_source, now))
                conn.execute(
                    "INSERT INTO labels(item_id, class_id, source, updated_at) VALUES(?, ?, ?, ?) "
                    "ON CONFLICT(item_id) DO UPDATE SET class_id=excluded.class_id, "
                    "source=excluded.source, updated_at=excluded.updated_at",
                    (item_id, class_id, new_source, now))
                conn.execute("DELETE FROM skipped WHERE item_id=?", (item_id,))
        return len(item_ids)

    def remove_labels(self, item_ids: Sequence[int], action: str = "unlabel") -> int:
        item_ids = list(dict.fromkeys(int(i) for i in item_ids))
        now = _now()
        removed = 0
        with self.transaction() as conn:
            action_id = self._next_action_id()
            for item_id in item_ids:
                old = conn.execute("SELECT class_id, source FROM labels WHERE item_id=?", (item_id,)).fetchone()
                if old is None:
                    continue
                conn.execute(
                    "INSERT INTO label_history(action_id, action, item_id, old_class_id, old_source, "
                    "new_class_id, new_source, created_at) VALUES(?, ?, ?, ?, ?, NULL, NULL, ?)",
                    (action_id, action, item_id, old["class_id"], old["source"], now))
                conn.execute("DELETE FROM labels WHERE item_id=?", (item_id,))
                removed += 1
        return removed

    def undo_last_label_action(self) -> dict[str, Any] | None:
        """Revert the newest label action that is not undone yet; returns what was undone."""
        with self.transaction() as conn:
            row = conn.execute("SELECT action_id, action FROM label_history WHERE undone=0 "
                               "ORDER BY action_id DESC LIMIT 1").fetchone()
            if row is None:
                return None
            rows = conn.execute("SELECT * FROM label_history WHERE action_id=? ORDER BY id DESC",
                                (row["action_id"],)).fetchall()
            for h in rows:
                if h["old_class_id"] is None:
                    conn.execute("DELETE FROM labels WHERE item_id=?", (h["item_id"],))
                    continue
                if conn.execute("SELECT 1 FROM classes WHERE id=?", (h["old_class_id"],)).fetchone() is None:
                    # the class was deleted since: bring it back under its old id so the label returns
                    conn.execute("INSERT INTO classes(id, name, created_at) VALUES(?, ?, ?)",
                                 (h["old_class_id"], f"restored-{h['old_class_id']}", _now()))
                conn.execute(
                    "INSERT INTO labels(item_id, class_id, source, updated_at) VALUES(?, ?, ?, ?) "
                    "ON CONFLICT(item_id) DO UPDATE SET class_id=excluded.class_id, "
                    "source=excluded.source, updated_at=excluded.updated_at",
                    (h["item_id"], h["old_class_id"], h["old_source"], _now()))
            conn.execute("UPDATE label_history SET undone=1 WHERE action_id=?", (row["action_id"],))
        return {"action_id": row["action_id"], "action": row["action"], "items": len(rows)}

    def labels(self, sources: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Current labels: item_id, source name of the item, class name, class_id, label source."""
        sql = ("SELECT l.item_id, i.source AS item_source, i.cache_index, c.id AS class_id, c.name AS class_name, "
               "l.source, l.updated_at FROM labels l JOIN items i ON i.id=l.item_id "
               "JOIN classes c ON c.id=l.class_id WHERE i.status='active'")
        args: list[Any] = []
        if sources is not None:
            sql += f" AND l.source IN ({','.join('?' * len(sources))})"
            args = list(sources)
        return [dict(r) for r in self.conn.execute(sql + " ORDER BY l.item_id", args)]

    def label_counts(self) -> dict[str, int]:
        return {r["name"]: r["n_labels"] for r in self.classes()}

    def label_history(self, limit: int = 50) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM label_history ORDER BY id DESC LIMIT ?", (limit,))]

    def skip_items(self, item_ids: Sequence[int]) -> None:
        with self.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO skipped(item_id, created_at) VALUES(?, ?)",
                             [(int(i), _now()) for i in item_ids])

    def unskip_items(self, item_ids: Sequence[int]) -> None:
        """Put skipped items back into the labelling queue (the Label page's undo of a skip)."""
        with self.transaction() as conn:
            conn.executemany("DELETE FROM skipped WHERE item_id=?", [(int(i),) for i in item_ids])

    def skipped_ids(self) -> set[int]:
        return {r[0] for r in self.conn.execute("SELECT item_id FROM skipped")}

    def unlabeled_ids(self, include_skipped: bool = False) -> list[int]:
        sql = ("SELECT id FROM items i WHERE status='active' AND NOT EXISTS "
               "(SELECT 1 FROM labels l WHERE l.item_id=i.id)")
        if not include_skipped:
            sql += " AND NOT EXISTS (SELECT 1 FROM skipped s WHERE s.item_id=i.id)"
        return [r[0] for r in self.conn.execute(sql + " ORDER BY id")]

    # -- jobs ------------------------------------------------------------------------
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
            if row is None or row["status"] != "queued":
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
        target = {"cancel": ("cancelling", "cancelled"), "pause": ("pausing", "paused")}[how]
        with self.transaction() as conn:
            row = conn.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                return False
            if row["status"] == "queued":
                conn.execute("UPDATE jobs SET status=?, finished_at=? WHERE id=?", (target[1], _now(), job_id))
                return True
            if row["status"] in ("running", "pausing", "cancelling"):
                conn.execute("UPDATE jobs SET status=? WHERE id=?", (target[0], job_id))
                return True
            if row["status"] in ("paused", "interrupted") and how == "cancel":
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
            if row is None or row["status"] not in ("paused", "interrupted", "failed", "cancelled"):
                return False
            params = {**_loads(row["params"]), "resume": True}
            conn.execute("UPDATE jobs SET status='queued', params=?, finished_at=NULL, pid=NULL WHERE id=?",
                         (json.dumps(params), job_id))
        return True

    def mark_dead_jobs(self, stale_after_s: float, pid_alive) -> list[int]:
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

    # -- runs, checkpoints, metrics, artifacts ---------------------------------------
    def create_run(self, kind: str, params: dict[str, Any], job_id: int | None = None) -> int:
        with self.transaction() as conn:
            return int(conn.execute("INSERT INTO runs(job_id, kind, params, created_at) VALUES(?, ?, ?, ?)",
                                    (job_id, kind, json.dumps(params), _now())).lastrowid)

    def run(self, run_id: int) -> dict[str, Any] | None:
        return _row(self.conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone(), RUN_JSON)

    def runs(self, kind: str | None = None, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM runs WHERE 1=1", []
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        if status:
            sql += " AND status=?"
            args.append(status)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return [_row(r, RUN_JSON) for r in self.conn.execute(sql, args)]

    def run_for_job(self, job_id: int) -> dict[str, Any] | None:
        return _row(self.conn.execute("SELECT * FROM runs WHERE job_id=? ORDER BY id DESC LIMIT 1",
                                      (job_id,)).fetchone(), RUN_JSON)

    def update_run(self, run_id: int, status: str | None = None, summary: dict[str, Any] | None = None) -> None:
        with self.transaction() as conn:
            if summary is not None:
                row = conn.execute("SELECT summary FROM runs WHERE id=?", (run_id,)).fetchone()
                merged = {**_loads(row["summary"]), **summary}
                conn.execute("UPDATE runs SET summary=? WHERE id=?", (json.dumps(merged), run_id))
            if status is not None:
                finished = _now() if status in ("done", "failed", "cancelled") else None
                conn.execute("UPDATE runs SET status=?, finished_at=? WHERE id=?", (status, finished, run_id))

    def add_checkpoint(self, run_id: int, epoch: int, step: int, path: str) -> int:
        with self.transaction() as conn:
            return int(conn.execute("INSERT INTO checkpoints(run_id, epoch, step, path, created_at) "
                                    "VALUES(?, ?, ?, ?, ?)", (run_id, epoch, step, path, _now())).lastrowid)

    def latest_checkpoint(self, run_id: int | None = None, kind: str | None = None) -> dict[str, Any] | None:
        """Newest checkpoint of a run, or of the newest run of `kind` that has one."""
        sql = "SELECT k.*, r.kind AS run_kind FROM checkpoints k JOIN runs r ON r.id=k.run_id WHERE 1=1"
        args: list[Any] = []
        if run_id is not None:
            sql += " AND k.run_id=?"
            args.append(run_id)
        if kind is not None:
            sql += " AND r.kind=?"
            args.append(kind)
        return _row(self.conn.execute(sql + " ORDER BY k.id DESC LIMIT 1", args).fetchone())

    def delete_checkpoint(self, checkpoint_id: int) -> None:
        """Forget a checkpoint row (its file was pruned); the run keeps its newer ones."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM checkpoints WHERE id=?", (checkpoint_id,))

    def checkpoints(self, run_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM checkpoints WHERE run_id=? ORDER BY id",
                                                   (run_id,))]

    def log_metrics(self, values: dict[str, float], run_id: int | None = None, job_id: int | None = None,
                    step: int | None = None, epoch: int | None = None) -> None:
        now = _now()
        with self.transaction() as conn:
            conn.executemany("INSERT INTO metrics(run_id, job_id, step, epoch, name, value, created_at) "
                             "VALUES(?, ?, ?, ?, ?, ?, ?)",
                             [(run_id, job_id, step, epoch, k, float(v), now) for k, v in values.items()])

    def metrics(self, run_id: int, name: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM metrics WHERE run_id=?", [run_id]
        if name:
            sql += " AND name=?"
            args.append(name)
        return [dict(r) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def add_artifact(self, kind: str, path: str, meta: dict[str, Any] | None = None,
                     run_id: int | None = None) -> int:
        with self.transaction() as conn:
            return int(conn.execute("INSERT INTO artifacts(run_id, kind, path, meta, created_at) "
                                    "VALUES(?, ?, ?, ?, ?)",
                                    (run_id, kind, path, json.dumps(meta or {}), _now())).lastrowid)

    def latest_artifact(self, kind: str) -> dict[str, Any] | None:
        return _row(self.conn.execute("SELECT * FROM artifacts WHERE kind=? ORDER BY id DESC LIMIT 1",
                                      (kind,)).fetchone(), ("meta",))

    def artifacts(self, kind: str, limit: int = 20) -> list[dict[str, Any]]:
        return [_row(r, ("meta",)) for r in self.conn.execute(
            "SELECT * FROM artifacts WHERE kind=? ORDER BY id DESC LIMIT ?", (kind, limit))]

    # -- predictions and suggestions -------------------------------------------------
    def save_predictions(self, run_id: int, rows: Iterable[tuple[int, int, float]]) -> None:
        """rows: (item_id, class_id, confidence)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM predictions WHERE run_id=?", (run_id,))
            conn.executemany("INSERT INTO predictions(run_id, item_id, class_id, confidence) VALUES(?, ?, ?, ?)",
                             [(run_id, int(i), int(c), float(p)) for i, c, p in rows])

    def predictions(self, run_id: int | None = None) -> list[dict[str, Any]]:
        """Predictions of a run (default: the newest run that has any)."""
        if run_id is None:
            row = self.conn.execute("SELECT MAX(run_id) FROM predictions").fetchone()
            run_id = row[0]
            if run_id is None:
                return []
        return [dict(r) for r in self.conn.execute(
            "SELECT p.item_id, p.class_id, c.name AS class_name, p.confidence, p.run_id FROM predictions p "
            "JOIN classes c ON c.id=p.class_id WHERE p.run_id=? ORDER BY p.item_id", (run_id,))]

    def latest_prediction_run_id(self) -> int | None:
        """The newest run that stored predictions (cheap: lets pages cache predictions per run)."""
        return self.conn.execute("SELECT MAX(run_id) FROM predictions").fetchone()[0]

    def save_suggestions(self, rows: Sequence[tuple[int, str, str]]) -> int:
        """rows: (item_id, strategy, reason) in rank order; returns the batch number."""
        with self.transaction() as conn:
            batch = int(conn.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM suggestions").fetchone()[0])
            conn.executemany("INSERT INTO suggestions(batch, item_id, rank, strategy, reason, created_at) "
                             "VALUES(?, ?, ?, ?, ?, ?)",
                             [(batch, int(i), rank, s, r, _now()) for rank, (i, s, r) in enumerate(rows)])
        return batch

    def open_suggestions(self) -> list[dict[str, Any]]:
        """The newest suggestion batch, less the items labelled or skipped since."""
        return [dict(r) for r in self.conn.execute(
            "SELECT s.* FROM suggestions s WHERE s.batch=(SELECT MAX(batch) FROM suggestions) "
            "AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.item_id=s.item_id) "
            "AND NOT EXISTS (SELECT 1 FROM skipped k WHERE k.item_id=s.item_id) ORDER BY s.rank")]

    # -- ingest reports --------------------------------------------------------------
    def add_ingest_report(self, report: dict[str, Any]) -> int:
        with self.transaction() as conn:
            return int(conn.execute("INSERT INTO ingest_reports(created_at, report) VALUES(?, ?)",
                                    (_now(), json.dumps(report))).lastrowid)

    def last_ingest_report(self) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT report FROM ingest_reports ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else json.loads(row[0])

    # -- summary ---------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        jobs = {r[0]: r[1] for r in self.conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")}
        return {
            "items": self.count_items(),
            "labels": int(self.conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0]),
            "labels_per_class": self.label_counts(),
            "jobs": jobs,
            "latest_runs": [{k: r[k] for k in ("id", "kind", "status", "created_at", "summary")}
                            for r in self.runs(limit=5)],
        }


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
