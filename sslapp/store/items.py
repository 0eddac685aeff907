"""The items table (one row per ingested image) and the skipped list of the labelling queue."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from sslapp.store.connection import Connection, _now


class ItemsTable(Connection):
    """Items with their content hash and cache slot, and the items the user skipped while labelling."""

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

    def active_ids(self, ids: Sequence[int]) -> set[int]:
        """Those of `ids` that are active items (not removed), without reading their rows: every active id
        in one scan, then a set intersection (59,000 ids of 100,000 items: 0.15 s in chunks of IN (...))."""
        wanted = {int(i) for i in ids}
        if not wanted:
            return set()
        return wanted.intersection(r[0] for r in self.conn.execute("SELECT id FROM items WHERE status='active'"))

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

    # -- skipped ---------------------------------------------------------------------
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
