"""The workspace store on real SQLite files: basics, labels with undo and history, migrations,
and two real processes writing labels at the same time."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from sslapp.store import Store
from sslapp.store.db import MIGRATIONS
from sslapp.workspace import open_workspace


def _items(store: Store, n: int, start: int = 0) -> list[int]:
    return store.add_items([{"source": f"img{i}.png", "sha256": f"{i:064x}", "width": 32, "height": 32,
                             "cache_index": i} for i in range(start, start + n)])


def test_wal_busy_timeout_and_schema_version(tmp_path):
    store = Store(tmp_path / "a.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    assert store.schema_version() == len(MIGRATIONS)
    store.close()
    assert Store(tmp_path / "a.db").schema_version() == len(MIGRATIONS)  # reopening migrates nothing twice


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "new.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer sslapp"):
        Store(path)


def test_items_hashes_and_cache_index(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.next_cache_index() == 0
    ids = _items(store, 3)
    assert store.count_items() == 3 and store.next_cache_index() == 3
    assert store.known_hashes([f"{1:064x}", "f" * 64]) == {f"{1:064x}"}
    with pytest.raises(sqlite3.IntegrityError):  # same content hash twice
        _items(store, 1, start=1)
    assert store.count_items() == 3  # the failed insert left nothing behind
    assert [r["id"] for r in store.items(limit=2, offset=1)] == ids[1:]


def test_labels_undo_history_and_imported_source(tmp_path):
    store = Store(tmp_path / "l.db")
    ids = _items(store, 4)
    cat, dog = store.class_id("cat", create=True), store.class_id("dog", create=True)
    store.set_labels(ids[:2], cat, source="imported", action="import")
    store.set_labels([ids[1], ids[2]], dog)
    assert store.label_counts() == {"cat": 1, "dog": 2}
    assert {r["item_id"]: r["source"] for r in store.labels()} == {ids[0]: "imported", ids[1]: "user",
                                                                   ids[2]: "user"}
    undone = store.undo_last_label_action()
    assert undone["items"] == 2
    assert store.label_counts() == {"cat": 2, "dog": 0}
    assert {r["item_id"]: r["source"] for r in store.labels()} == {ids[0]: "imported", ids[1]: "imported"}
    history = store.label_history()
    assert len(history) == 4 and sum(h["undone"] for h in history) == 2
    store.undo_last_label_action()
    assert store.labels() == [] and store.undo_last_label_action() is None
    with pytest.raises(ValueError):
        store.set_labels(ids[:1], 999)
    with pytest.raises(ValueError):
        store.set_labels(ids[:1], cat, source="guessed")


def test_ingest_reports_and_settings(tmp_path):
    store = Store(tmp_path / "r.db")
    assert store.last_ingest_report() is None
    store.add_ingest_report({"added": 1, "duplicates": 0, "skipped": []})
    store.add_ingest_report({"added": 2, "duplicates": 1, "skipped": [{"source": "x", "reason": "empty: y"}]})
    assert store.last_ingest_report()["added"] == 2
    store.set_setting("cache_size", 32)
    assert store.get_setting("cache_size") == 32 and store.get_setting("missing", 7) == 7


def _label_many(db: str, item_ids: list[int], class_name: str, barrier) -> None:
    store = Store(db)
    class_id = store.class_id(class_name, create=True)
    barrier.wait()  # both processes start writing at the same moment
    for item_id in item_ids:
        store.set_labels([item_id], class_id)
        store.update_job_progress(1, {"last": item_id})  # and mix in other writes, as the worker does


def test_two_processes_label_at_once_and_nothing_is_lost(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    ids = _items(ws.store, 400)
    ws.store.enqueue_job("sleep", {})
    db = str(ws.root / "sslapp.db")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_label_many, args=(db, ids[:200], "a", barrier)),
             ctx.Process(target=_label_many, args=(db, ids[200:], "b", barrier))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0], "a writer failed (database is locked?)"
    labels = ws.store.labels()
    assert len(labels) == 400
    assert ws.store.label_counts() == {"a": 200, "b": 200}
    assert len(ws.store.label_history(limit=1000)) == 400
