"""The workspace database: the single source of truth. All SQL lives in `db.py`."""

from sslapp.store.db import Store

__all__ = ["Store"]
