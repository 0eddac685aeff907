"""The workspace store on real SQLite files: basics, labels with undo and history, migrations,
and two real processes writing labels at the same time."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sslapp.store import Store
from sslapp.store.db import MIGRATIONS
from sslapp.store.states import ACTIVE_JOB_STATES, FINAL_JOB_STATES, RESUMABLE_JOB_STATES, JobState
from sslapp.workspace import open_workspace

# sha256 of each released migration: a workspace written by an older sslapp only opens if these stay as they were.
RELEASED_MIGRATIONS = ["9f773e8a01f1b9a57b713a27e8480402b649d4cdc90c247aa536c5b1e740ce4d",
                       "13c5a819ede8fd8486d2f82c976a32c9073924bd4ae7116d42b614b92e69eb01",
                       "b3c8347dcd87408e6d15d774b4eb6cb4005aacae3eb67178080b5ddcc1372d8c"]


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


def test_released_migrations_are_never_edited():
    assert len(MIGRATIONS) >= len(RELEASED_MIGRATIONS)
    for number, digest in enumerate(RELEASED_MIGRATIONS):
        assert hashlib.sha256(MIGRATIONS[number].encode()).hexdigest() == digest, (
            f"migration {number + 1} was released; append a new migration instead of editing it")


def test_a_database_written_by_the_first_schema_opens_and_keeps_its_rows(tmp_path):
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)  # written by hand, as the first release left it: no Store involved
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO items(source, sha256, width, height, cache_index, added_at) "
                 "VALUES('a.png', 'ab', 8, 8, 0, 1.0)")
    conn.execute("INSERT INTO classes(name, created_at) VALUES('cat', 1.0)")
    conn.execute("INSERT INTO labels(item_id, class_id, source, updated_at) VALUES(1, 1, 'user', 1.0)")
    conn.execute("INSERT INTO jobs(kind, status, created_at) VALUES('embed', 'paused', 1.0)")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version() == len(MIGRATIONS)
    assert store.label_counts() == {"cat": 1} and store.items()[0]["label"] == "cat"
    assert store.resume_job(1) and store.job(1)["status"] == JobState.QUEUED


def test_table_groups_share_one_transaction(tmp_path):
    store = Store(tmp_path / "t.db")
    with pytest.raises(RuntimeError), store.transaction():
        _items(store, 2)
        store.enqueue_job("embed")
        store.set_setting("x", 1)
        raise RuntimeError("roll it all back")
    assert store.count_items() == 0 and store.jobs() == [] and store.get_setting("x") is None


def test_job_states_through_the_queue(tmp_path):
    store = Store(tmp_path / "q.db")
    a, b = store.enqueue_job("embed"), store.enqueue_job("embed")
    assert store.request_job_stop(a, "pause") and store.job_status(a) == JobState.PAUSED
    assert store.claim_job(b, pid=1)["status"] == JobState.RUNNING
    assert store.request_job_stop(b, "cancel") and store.job_status(b) == JobState.CANCELLING
    assert type(store.job_status(b)) is str  # stored as plain text, not an enum repr
    assert [j["id"] for j in store.jobs(statuses=ACTIVE_JOB_STATES)] == [b]
    store.finish_job(b, JobState.CANCELLED)
    assert store.job_status(b) == "cancelled" and store.job_status(b) in FINAL_JOB_STATES
    assert all(store.resume_job(j) for j in (a, b)) and {store.job_status(j) for j in (a, b)} == {"queued"}
    assert set(RESUMABLE_JOB_STATES) == {"paused", "interrupted", "failed", "cancelled"}
    assert {str(s) for s in JobState} == {"queued", "running", "pausing", "cancelling", "paused", "cancelled",
                                          "done", "failed", "interrupted"}


def test_old_import_paths_and_constants_still_work():
    from sslapp.store import db
    assert tuple(db.ACTIVE_JOB_STATES) == ("queued", "running", "cancelling", "pausing")
    assert tuple(db.FINAL_JOB_STATES) == ("done", "failed", "cancelled")
    LABEL_SOURCES, BUSY_TIMEOUT_MS = db.LABEL_SOURCES, db.BUSY_TIMEOUT_MS
    assert LABEL_SOURCES == ("user", "imported", "propagated") and BUSY_TIMEOUT_MS == 60_000


def test_only_the_store_imports_sqlite3_and_job_states_stay_light():
    root = Path(__file__).resolve().parents[1] / "sslapp"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.parent.name != "store" and re.search(r"^\s*(import|from)\s+sqlite3\b", p.read_text(), re.M)]
    assert offenders == []
    code = "import sys, sslapp.store.states; assert not {'sqlite3', 'torch'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root.parent)


def test_undo_one_action_keeps_newer_work_and_drops_emptied_implicit_classes(tmp_path):
    store = Store(tmp_path / "u.db")
    ids = _items(store, 4)
    cat = store.class_id("cat", create=True)
    bird = store.class_id("bird", create=True, implicit=True)  # made on the way while labelling
    store.set_labels([ids[0]], bird)
    a1 = store.last_action_id()
    store.set_labels([ids[1]], cat)
    a2 = store.last_action_id()
    assert a2 == a1 + 1
    undone = store.undo_label_action(a1)  # an older action of one tab, under a newer one of another
    assert undone == {"action_id": a1, "action": "label", "items": 1, "kept": 0, "removed_classes": ["bird"]}
    assert store.label_counts() == {"cat": 1} and store.class_id("bird") is None
    assert store.undo_label_action(a1) is None  # undone already
    store.undo_label_action(a2)
    assert store.label_counts() == {"cat": 0}  # made on purpose: kept when empty

    store.set_labels([ids[2]], cat)
    a3 = store.last_action_id()
    dog = store.class_id("dog", create=True)
    store.set_labels([ids[2]], dog)  # changed since, e.g. in another tab
    undone = store.undo_label_action(a3)
    assert (undone["items"], undone["kept"]) == (0, 1)
    assert {r["item_id"]: r["class_name"] for r in store.labels()} == {ids[2]: "dog"}  # newer work kept

    owl = store.class_id("owl", create=True, implicit=True)
    store.set_labels([ids[3]], owl)
    assert store.undo_last_label_action()["removed_classes"] == ["owl"]  # the global undo does the same
    assert store.remove_labels([ids[0]]) == 0 and store.last_action_id() is None  # nothing written, no id
    assert store.set_labels([], cat) == 0 and store.last_action_id() is None


def test_add_classes_on_purpose(tmp_path):
    store = Store(tmp_path / "c.db")
    ids = _items(store, 1)
    fox = store.class_id("fox", create=True, implicit=True)
    assert store.add_classes(["cat", " dog ", "cat", "", "fox"]) == {"created": ["cat", "dog"], "existing": ["fox"]}
    assert [(c["name"], c["implicit"]) for c in store.classes()] == [("fox", 0), ("cat", 0), ("dog", 0)]
    store.set_labels(ids, fox)
    store.undo_last_label_action()
    assert store.class_id("fox") == fox  # named on purpose since: it stays


def test_classes_from_the_first_schema_are_kept_when_emptied(tmp_path):
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO items(source, sha256, width, height, cache_index, added_at) "
                 "VALUES('a.png', 'ab', 8, 8, 0, 1.0)")
    conn.execute("INSERT INTO classes(name, created_at) VALUES('cat', 1.0)")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.classes()[0]["implicit"] == 0
    store.set_labels([1], store.class_id("cat"))
    store.undo_last_label_action()
    assert store.label_counts() == {"cat": 0}


def test_redo_applies_an_undone_action_again_and_keeps_newer_work(tmp_path):
    store = Store(tmp_path / "r.db")
    ids = _items(store, 3)
    cat, dog = store.class_id("cat", create=True), store.class_id("dog", create=True)
    store.set_labels(ids[:2], cat, annotator="ann")
    a1 = store.last_action_id()
    assert store.redo_label_action(a1) is None  # not undone: nothing to redo
    store.undo_label_action(a1)
    store.set_labels([ids[1]], dog)  # changed after the undo, e.g. in another tab
    redone = store.redo_label_action(a1)
    assert redone == {"action_id": a1, "action": "label", "items": 1, "kept": 1, "removed_classes": []}
    assert {r["item_id"]: (r["class_name"], r["source"], r["annotator"]) for r in store.labels()} == {
        ids[0]: ("cat", "user", "ann"), ids[1]: ("dog", "user", None)}  # newer work kept
    assert store.redo_label_action(a1) is None and store.redo_label_action(999) is None
    store.undo_label_action(a1)  # undoable again after its redo
    assert {r["item_id"] for r in store.labels()} == {ids[1]}

    bird = store.class_id("bird", create=True, implicit=True)  # made on the way; the undo removes it
    store.skip_items([ids[2]])
    store.set_labels([ids[2]], bird)
    a2 = store.last_action_id()
    assert store.undo_label_action(a2)["removed_classes"] == ["bird"]
    assert store.redo_label_action(a2)["items"] == 1  # and the redo brings it back under its name and id
    assert store.class_id("bird") == bird and store.item(ids[2])["label"] == "bird" and not store.skipped_ids()


def test_merge_and_class_deletion_undo_and_redo_by_name(tmp_path):
    store = Store(tmp_path / "m.db")
    ids = _items(store, 3)
    a, b = store.class_id("a", create=True), store.class_id("b", create=True)
    store.set_labels(ids[:2], a)
    store.set_labels(ids[2:], b)
    store.save_predictions(store.create_run("finetune", {}), [(i, a, 0.9) for i in ids])
    assert store.prediction(ids[0]) == {"class_id": a, "class_name": "a", "confidence": pytest.approx(0.9)}
    assert store.merge_classes(a, b) == 2  # a class the classifier predicted merges too
    merge = store.last_action_id()
    assert store.prediction(ids[0]) is None  # its guesses went with it
    store.undo_label_action(merge)
    assert store.label_counts() == {"a": 2, "b": 1} and store.class_id("a") == a  # its own name, not restored-1
    assert store.redo_label_action(merge)["removed_classes"] == ["a"]  # merged again: the source goes again
    assert store.label_counts() == {"b": 3}
    assert store.delete_class(b) == 3
    delete = store.last_action_id()
    store.undo_label_action(delete)
    assert store.label_counts() == {"b": 3}
    store.class_id("c", create=True)
    store.rename_class(b, "bee")  # the history shows a class's name now
    actions = store.label_actions(limit=3)
    assert [(x["action"], x["n_items"], x["old_class"], x["new_class"], x["undone"]) for x in actions] == [
        ("delete-class", 3, "bee", None, 1), ("merge", 2, "a", "bee", 0), ("label", 1, None, "bee", 0)]
    assert store.redo_label_action(delete)["removed_classes"] == ["bee"]
    assert store.label_counts() == {"c": 0} and store.label_actions(limit=1)[0]["old_class"] == "bee"  # kept by name
