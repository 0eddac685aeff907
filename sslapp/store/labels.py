"""Classes and labels, with the label history that makes every label action undoable and redoable.

A class is made on purpose (`add_classes`, or `class_id(name, create=True)`) or on the way while
labelling (`class_id(name, create=True, implicit=True)`, e.g. a new name typed when labelling a
selection); an implicit class that an undo leaves empty is removed with it. The history keeps each
row's class names too, so an undo or redo that needs a class removed since brings it back by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sslapp.store.connection import Connection, _now

LABEL_SOURCES = ("user", "imported", "propagated")


class LabelsTable(Connection):
    """Classes, the current label of each item, and the history of label actions (for undo)."""

    # -- classes ---------------------------------------------------------------------
    def classes(self) -> list[dict[str, Any]]:
        """Classes in creation order with their label counts."""
        return [dict(r) for r in self.conn.execute(
            "SELECT c.id, c.name, c.created_at, c.implicit, COUNT(l.item_id) AS n_labels FROM classes c "
            "LEFT JOIN labels l ON l.class_id=c.id GROUP BY c.id ORDER BY c.id")]

    def class_id(self, name: str, create: bool = False, implicit: bool = False) -> int | None:
        """The id of the class called `name`; `create` makes it when missing (`implicit`: on the way
        while labelling, so an undo that empties it removes it)."""
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
            return int(conn.execute("INSERT INTO classes(name, created_at, implicit) VALUES(?, ?, ?)",
                                    (name, _now(), int(implicit))).lastrowid)

    def add_classes(self, names: Sequence[str]) -> dict[str, list[str]]:
        """Make classes on purpose (they stay when empty); returns {"created": [...], "existing": [...]}.

        Names are stripped, empty ones and repeats dropped; an existing implicit class becomes a kept one.
        """
        out: dict[str, list[str]] = {"created": [], "existing": []}
        with self.transaction() as conn:
            for name in dict.fromkeys(n.strip() for n in names if n.strip()):
                row = conn.execute("SELECT id FROM classes WHERE name=?", (name,)).fetchone()
                if row is None:
                    conn.execute("INSERT INTO classes(name, created_at, implicit) VALUES(?, ?, 0)", (name, _now()))
                    out["created"].append(name)
                else:
                    conn.execute("UPDATE classes SET implicit=0 WHERE id=?", (row[0],))
                    out["existing"].append(name)
        return out

    def rename_class(self, class_id: int, new_name: str) -> None:
        """Give a class a new name (its labels stay); a name another class has is refused."""
        new_name = new_name.strip()
        if not new_name:
            raise ValueError("A class name cannot be empty.")
        with self.transaction() as conn:
            clash = conn.execute("SELECT id FROM classes WHERE name=? AND id!=?", (new_name, class_id)).fetchone()
            if clash is not None:
                raise ValueError(f"A class named {new_name!r} already exists; merge the classes instead.")
            conn.execute("UPDATE classes SET name=? WHERE id=?", (new_name, class_id))
            # the history names it so too: an undo or redo that brings the class back uses its newest name
            for side in ("old", "new"):
                conn.execute(f"UPDATE label_history SET {side}_class_name=? WHERE {side}_class_id=?",
                             (new_name, class_id))

    def merge_classes(self, source_id: int, target_id: int) -> int:
        """Move every label of `source_id` to `target_id` (undoable), then drop the source class."""
        if source_id == target_id:
            return 0
        with self.transaction():
            items = [r[0] for r in self.conn.execute("SELECT item_id FROM labels WHERE class_id=?", (source_id,))]
            self.set_labels(items, target_id, source=None, action="merge")
            self.conn.execute("DELETE FROM predictions WHERE class_id=?", (source_id,))  # else the delete fails
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
        action_id = int(self.conn.execute("SELECT COALESCE(MAX(action_id), 0) + 1 FROM label_history").fetchone()[0])
        self._local.action_id = action_id
        return action_id

    def last_action_id(self) -> int | None:
        """The id of the newest label action written by this thread (set, remove, merge, delete-class):
        what a page keeps to undo its own actions with `undo_label_action`."""
        return getattr(self._local, "action_id", None)

    def set_labels(self, item_ids: Sequence[int], class_id: int, source: str | None = "user",
                   action: str = "label", annotator: str | None = None) -> int:
        """Label items now (one undoable action). `source=None` keeps each item's current source and
        annotator (a merge); otherwise `annotator` is who gave the label (None: not known)."""
        if source is not None and source not in LABEL_SOURCES:
            raise ValueError(f"label source must be one of {LABEL_SOURCES}, not {source!r}")
        self._local.action_id = None  # last_action_id() names this call's action, or none
        item_ids = list(dict.fromkeys(int(i) for i in item_ids))
        if not item_ids:
            return 0
        now = _now()
        with self.transaction() as conn:
            row = conn.execute("SELECT name FROM classes WHERE id=?", (class_id,)).fetchone()
            if row is None:
                raise ValueError(f"No class with id {class_id}.")
            action_id = self._next_action_id()
            for item_id in item_ids:
                self._write_label(conn, action_id, action, item_id, (class_id, row["name"]), source, annotator, now)
        return len(item_ids)

    def import_labels(self, labels: Sequence[tuple[int, str, str | None]], source: str = "imported",
                      action: str = "import") -> int:
        """Set many labels, `(item id, class name, annotator)` each, in one transaction and one undoable
        action: all of them or, on any error, none (missing classes are made on purpose, and kept)."""
        if source not in LABEL_SOURCES:
            raise ValueError(f"label source must be one of {LABEL_SOURCES}, not {source!r}")
        self._local.action_id = None
        if not labels:
            return 0
        now = _now()
        with self.transaction() as conn:
            action_id = self._next_action_id()
            for item_id, class_name, annotator in labels:
                class_id = self.class_id(class_name, create=True)
                self._write_label(conn, action_id, action, int(item_id), (class_id, class_name.strip()), source,
                                  annotator, now)
        return len(labels)

    @staticmethod
    def _old_label(conn, item_id: int):
        """The item's label now with its class name (None: unlabelled)."""
        return conn.execute("SELECT l.class_id, l.source, l.annotator, c.name FROM labels l "
                            "LEFT JOIN classes c ON c.id=l.class_id WHERE l.item_id=?", (item_id,)).fetchone()

    @staticmethod
    def _put_label(conn, item_id: int, class_id: int, source: str, annotator: str | None, now: float) -> None:
        conn.execute(
            "INSERT INTO labels(item_id, class_id, source, annotator, updated_at) VALUES(?, ?, ?, ?, ?) "
            "ON CONFLICT(item_id) DO UPDATE SET class_id=excluded.class_id, source=excluded.source, "
            "annotator=excluded.annotator, updated_at=excluded.updated_at",
            (item_id, class_id, source, annotator, now))

    def _write_label(self, conn, action_id: int, action: str, item_id: int, new_class: tuple[int, str],
                     source: str | None, annotator: str | None, now: float) -> None:
        """One label row and its history row (inside the caller's transaction); `new_class` is (id, name)."""
        old = self._old_label(conn, item_id)
        new_source = source or (old["source"] if old else "user")
        new_annotator = annotator if source is not None else (old["annotator"] if old else annotator)
        conn.execute(
            "INSERT INTO label_history(action_id, action, item_id, old_class_id, old_source, old_annotator, "
            "old_class_name, new_class_id, new_source, new_annotator, new_class_name, created_at) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (action_id, action, item_id, *(tuple(old) if old else (None,) * 4), new_class[0], new_source,
             new_annotator, new_class[1], now))
        self._put_label(conn, item_id, new_class[0], new_source, new_annotator, now)
        conn.execute("DELETE FROM skipped WHERE item_id=?", (item_id,))

    def remove_labels(self, item_ids: Sequence[int], action: str = "unlabel") -> int:
        self._local.action_id = None
        item_ids = list(dict.fromkeys(int(i) for i in item_ids))
        now = _now()
        removed = 0
        with self.transaction() as conn:
            action_id = self._next_action_id()
            for item_id in item_ids:
                old = self._old_label(conn, item_id)
                if old is None:
                    continue
                conn.execute(
                    "INSERT INTO label_history(action_id, action, item_id, old_class_id, old_source, old_annotator, "
                    "old_class_name, new_class_id, new_source, created_at) VALUES(?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
                    (action_id, action, item_id, *old, now))
                conn.execute("DELETE FROM labels WHERE item_id=?", (item_id,))
                removed += 1
        if not removed:  # no row written: the id is still free and the next action will take it
            self._local.action_id = None
        return removed

    def undo_last_label_action(self) -> dict[str, Any] | None:
        """Revert the newest label action that is not undone yet; returns what was undone."""
        with self.transaction() as conn:
            row = conn.execute("SELECT action_id FROM label_history WHERE undone=0 "
                               "ORDER BY action_id DESC LIMIT 1").fetchone()
            return None if row is None else self._revert(conn, int(row["action_id"]), only_unchanged=False)

    def undo_label_action(self, action_id: int) -> dict[str, Any] | None:
        """Revert one action (e.g. a tab's own newest), None if it is unknown or undone already.

        Items whose label changed since (another tab, a later action) keep their newer label and are
        counted in `kept`: undoing an older action never overwrites newer work.
        """
        with self.transaction() as conn:
            live = conn.execute("SELECT 1 FROM label_history WHERE action_id=? AND undone=0 LIMIT 1",
                                (int(action_id),)).fetchone()
            return None if live is None else self._revert(conn, int(action_id), only_unchanged=True)

    def _revert(self, conn, action_id: int, only_unchanged: bool) -> dict[str, Any]:
        rows = conn.execute("SELECT * FROM label_history WHERE action_id=? ORDER BY id DESC", (action_id,)).fetchall()
        reverted = kept = 0
        for h in rows:
            if only_unchanged:
                now = conn.execute("SELECT class_id, source FROM labels WHERE item_id=?", (h["item_id"],)).fetchone()
                if (tuple(now) if now else (None, None)) != (h["new_class_id"], h["new_source"]):
                    kept += 1
                    continue
            reverted += 1
            if h["old_class_id"] is None:
                conn.execute("DELETE FROM labels WHERE item_id=?", (h["item_id"],))
                continue
            self._bring_back_class(conn, h["old_class_id"], h["old_class_name"])
            self._put_label(conn, h["item_id"], h["old_class_id"], h["old_source"], h["old_annotator"], _now())
        conn.execute("UPDATE label_history SET undone=1 WHERE action_id=?", (action_id,))
        removed = self._drop_emptied_implicit(conn, {h["new_class_id"] for h in rows if h["new_class_id"]})
        return {"action_id": action_id, "action": rows[0]["action"], "items": reverted, "kept": kept,
                "removed_classes": removed}

    def redo_label_action(self, action_id: int) -> dict[str, Any] | None:
        """Apply an undone action again (the Label page's redo); None if it is unknown or not undone.

        As undo, it never overwrites newer work: an item whose label changed since the undo keeps it and is
        counted in `kept`. A class the undo removed comes back under its name, and a merge or a class
        deletion removes the class it emptied again, as it did the first time.
        """
        with self.transaction() as conn:
            rows = conn.execute("SELECT * FROM label_history WHERE action_id=? AND undone=1 ORDER BY id",
                                (int(action_id),)).fetchall()
            if not rows:
                return None
            redone = kept = 0
            for h in rows:
                now = conn.execute("SELECT class_id, source FROM labels WHERE item_id=?", (h["item_id"],)).fetchone()
                now = tuple(now) if now else (None, None)
                if now == (h["new_class_id"], h["new_source"]):  # the undo kept it: nothing to do
                    continue
                if now != (h["old_class_id"], h["old_source"]):
                    kept += 1
                    continue
                redone += 1
                if h["new_class_id"] is None:
                    conn.execute("DELETE FROM labels WHERE item_id=?", (h["item_id"],))
                    continue
                self._bring_back_class(conn, h["new_class_id"], h["new_class_name"])
                self._put_label(conn, h["item_id"], h["new_class_id"], h["new_source"], h["new_annotator"], _now())
                conn.execute("DELETE FROM skipped WHERE item_id=?", (h["item_id"],))
            conn.execute("UPDATE label_history SET undone=0 WHERE action_id=?", (int(action_id),))
            removed: list[str] = []
            if rows[0]["action"] in ("merge", "delete-class"):
                for class_id in sorted({h["old_class_id"] for h in rows if h["old_class_id"] is not None}):
                    row = conn.execute("SELECT name FROM classes c WHERE id=? AND NOT EXISTS "
                                       "(SELECT 1 FROM labels WHERE class_id=c.id)", (class_id,)).fetchone()
                    if row is not None:
                        conn.execute("DELETE FROM predictions WHERE class_id=?", (class_id,))
                        conn.execute("DELETE FROM classes WHERE id=?", (class_id,))
                        removed.append(row["name"])
        return {"action_id": int(action_id), "action": rows[0]["action"], "items": redone, "kept": kept,
                "removed_classes": removed}

    @staticmethod
    def _bring_back_class(conn, class_id: int, name: str | None) -> None:
        """Make class `class_id` again if it was removed since (an undo of a merge or a class deletion, a
        redo into a class an undo emptied), under its own name where that is free."""
        if conn.execute("SELECT 1 FROM classes WHERE id=?", (class_id,)).fetchone() is not None:
            return
        free = [n for n in ([name, f"{name} (restored)"] if name else [])
                if conn.execute("SELECT 1 FROM classes WHERE name=?", (n,)).fetchone() is None]
        conn.execute("INSERT INTO classes(id, name, created_at, implicit) VALUES(?, ?, ?, 1)",
                     (class_id, free[0] if free else f"restored-{class_id}", _now()))

    @staticmethod
    def _drop_emptied_implicit(conn, class_ids: set[int]) -> list[str]:
        """Remove implicit classes left without labels and without a live action that names them."""
        removed = []
        for class_id in sorted(class_ids):
            row = conn.execute(
                "SELECT name FROM classes c WHERE id=? AND implicit=1 "
                "AND NOT EXISTS (SELECT 1 FROM labels WHERE class_id=c.id) "
                "AND NOT EXISTS (SELECT 1 FROM label_history WHERE undone=0 "
                "AND (old_class_id=c.id OR new_class_id=c.id))", (class_id,)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM predictions WHERE class_id=?", (class_id,))
                conn.execute("DELETE FROM classes WHERE id=?", (class_id,))
                removed.append(row["name"])
        return removed

    def labels(self, sources: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Current labels: item_id, source name of the item, class name, class_id, label source, annotator."""
        sql = ("SELECT l.item_id, i.source AS item_source, i.cache_index, c.id AS class_id, c.name AS class_name, "
               "l.source, l.annotator, l.updated_at FROM labels l JOIN items i ON i.id=l.item_id "
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

    def label_actions(self, limit: int = 5) -> list[dict[str, Any]]:
        """The newest label actions, one row each, newest first (the Label page's history): action_id,
        action, n_items, item_id (the lowest), created_at, undone, annotator, n_classes, and the class
        before and after (old_class / new_class: its name now, else the name it had; None: no class).
        Aggregated in SQL, so a recent import of many labels costs one indexed pass, not its rows."""
        name = ("COALESCE((SELECT name FROM classes WHERE id=a.{0}_class_id), (SELECT {0}_class_name FROM "
                "label_history WHERE action_id=a.action_id AND {0}_class_id=a.{0}_class_id LIMIT 1))")
        return [dict(r) for r in self.conn.execute(
            f"SELECT a.*, {name.format('old')} AS old_class, {name.format('new')} AS new_class FROM ("
            "SELECT action_id, MIN(action) AS action, COUNT(*) AS n_items, MIN(item_id) AS item_id, "
            "MAX(created_at) AS created_at, MAX(undone) AS undone, MAX(new_annotator) AS annotator, "
            "COUNT(DISTINCT COALESCE(new_class_id, old_class_id)) AS n_classes, MIN(old_class_id) AS old_class_id, "
            "MIN(new_class_id) AS new_class_id FROM label_history WHERE action_id IN "
            "(SELECT DISTINCT action_id FROM label_history ORDER BY action_id DESC LIMIT ?) "
            "GROUP BY action_id) a ORDER BY a.action_id DESC", (int(limit),))]

    def unlabeled_ids(self, include_skipped: bool = False) -> list[int]:
        """Active items with no label (and not skipped), by id. The active ids are read alone and the few
        labelled and skipped ones taken out in Python: 38 ms at 100,000 items against 70 for NOT EXISTS."""
        done = {r[0] for r in self.conn.execute("SELECT item_id FROM labels")}
        if not include_skipped:
            done.update(r[0] for r in self.conn.execute("SELECT item_id FROM skipped"))
        return [r[0] for r in self.conn.execute("SELECT id FROM items WHERE status='active' ORDER BY id")
                if r[0] not in done]
