"""What jobs produce: runs with their checkpoints, metrics, artifacts, predictions and suggestions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sslapp.store.connection import Connection, _loads, _now, _row
from sslapp.store.states import FINAL_JOB_STATES

RUN_JSON = ("params", "summary")


class RunsTable(Connection):
    """Runs (one per training, embedding or export job) and everything recorded against them."""

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
                finished = _now() if status in FINAL_JOB_STATES else None  # runs end like jobs
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

    def run_artifacts(self, run_id: int, kind: str) -> list[dict[str, Any]]:
        """One run's artifacts of `kind`, oldest first (a pretraining run's encoders, to prune them)."""
        return [_row(r, ("meta",)) for r in self.conn.execute(
            "SELECT * FROM artifacts WHERE run_id=? AND kind=? ORDER BY id", (run_id, kind))]

    def delete_artifact(self, artifact_id: int) -> None:
        """Forget an artifact row; the caller removes its file (rows first, so no row names a missing file)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM artifacts WHERE id=?", (artifact_id,))

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

    def predicted_classes(self, item_ids: Sequence[int]) -> dict[int, str]:
        """{item id: predicted class name} from the newest run with predictions, for the items asked (a
        class picker's default, the labels the Explore filter checks), read 500 at a time without
        reading every prediction; empty before the first classifier."""
        run_id, ids, out = self.latest_prediction_run_id(), [int(i) for i in item_ids], {}
        for start in range(0, len(ids) if run_id is not None else 0, 500):
            chunk = ids[start:start + 500]
            out.update({int(r[0]): r[1] for r in self.conn.execute(
                "SELECT p.item_id, c.name FROM predictions p JOIN classes c ON c.id=p.class_id "
                f"WHERE p.run_id=? AND p.item_id IN ({','.join('?' * len(chunk))})", (run_id, *chunk))})
        return out

    def prediction(self, item_id: int) -> dict[str, Any] | None:
        """The newest classifier's guess for one item, {class_id, class_name, confidence}, or None (no
        classifier yet, or its class was deleted since): the Label page's "Model says"."""
        run_id = self.latest_prediction_run_id()
        row = None if run_id is None else self.conn.execute(
            "SELECT p.class_id, c.name AS class_name, p.confidence FROM predictions p "
            "JOIN classes c ON c.id=p.class_id WHERE p.run_id=? AND p.item_id=?", (run_id, int(item_id))).fetchone()
        return None if row is None else dict(row)

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
