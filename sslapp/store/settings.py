"""Workspace settings (JSON values by key) and the reports of past ingests."""

from __future__ import annotations

import json
from typing import Any

from sslapp.store.connection import Connection, _now


class SettingsTable(Connection):
    """Small key/value state of the workspace and the newest ingest reports shown on the Data page."""

    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def set_setting(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO settings(key, value) VALUES(?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, json.dumps(value)))

    # -- ingest reports --------------------------------------------------------------
    def add_ingest_report(self, report: dict[str, Any]) -> int:
        with self.transaction() as conn:
            return int(conn.execute("INSERT INTO ingest_reports(created_at, report) VALUES(?, ?)",
                                    (_now(), json.dumps(report))).lastrowid)

    def last_ingest_report(self) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT report FROM ingest_reports ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else json.loads(row[0])
