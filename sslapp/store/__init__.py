"""The workspace database: the single source of truth, and the only package that imports sqlite3."""

from sslapp.store.db import Store

__all__ = ["Store"]
