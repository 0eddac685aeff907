"""The workspace database: the single source of truth, and the only package that imports sqlite3.

`Store` loads on first use, so the job states (`sslapp.store.states`) stay importable without sqlite3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sslapp.store.db import Store

__all__ = ["Store"]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from sslapp.store.db import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
