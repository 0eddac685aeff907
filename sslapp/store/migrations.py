"""The schema: an append-only list of migrations and the function that applies the missing ones."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
    # 2: a class made on the way by labelling (not on purpose) goes away when undo empties it
    """
    ALTER TABLE classes ADD COLUMN implicit INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: who gave each label (NULL: not known, e.g. labels from before names were kept, folder names),
    # and in the history, so an undo gives the old name back with the old class
    """
    ALTER TABLE labels ADD COLUMN annotator TEXT;
    ALTER TABLE label_history ADD COLUMN old_annotator TEXT;
    ALTER TABLE label_history ADD COLUMN new_annotator TEXT;
    """,
    # 4: the class names in the label history, so an undo or a redo that brings back a class removed since
    # (a merge's source, a deleted class, an implicit class an undo emptied) gives it its own name again
    """
    ALTER TABLE label_history ADD COLUMN old_class_name TEXT;
    ALTER TABLE label_history ADD COLUMN new_class_name TEXT;
    """,
]


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the database at `path` up to the newest schema in one write transaction.

    A database written by a newer sslapp is refused rather than half-understood.
    """
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{path} was written by a newer sslapp (schema v{version}, this one knows "
                f"v{len(MIGRATIONS)}); upgrade sslapp to open it.")
        for number in range(version, len(MIGRATIONS)):
            for statement in _split_sql(MIGRATIONS[number]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
