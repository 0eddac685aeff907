"""The memory-mapped uint8 training cache: `cache/images-<S>.u8`, one (S, S, 3) row per item.

Rows are appended by ingestion and become visible only once their item rows commit in the
database: `read_cache` maps exactly `store.next_cache_index()` rows, and a tail written by an
ingest that failed before its commit is truncated before the next append. One ingest appends
at a time (a file lock), so two ingests never write the same rows.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np

from sslapp.workspace import Workspace


class CacheError(RuntimeError):
    """The cache file does not match the database (deleted or truncated by hand)."""


def cache_path(ws: Workspace, size: int | None = None) -> Path:
    return ws.cache_dir / f"images-{size or ws.cache_size}.u8"


def row_bytes(size: int) -> int:
    return size * size * 3


def read_cache(ws: Workspace) -> np.ndarray:
    """Read-only memmap uint8 (N, S, S, 3) of every committed row; row i is `items.cache_index == i`."""
    size = ws.cache_size
    n = ws.store.next_cache_index()
    path = cache_path(ws, size)
    if n == 0:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    have = path.stat().st_size if path.exists() else 0
    if have < n * row_bytes(size):
        raise CacheError(f"{path} holds {have // row_bytes(size)} images but the database has {n}; "
                         "the cache was damaged. Re-ingest the images into a new workspace.")
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, size, size, 3))


class CacheWriter:
    """Appends rows under an exclusive lock; `sync()` makes them durable before the DB commit."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.size = ws.cache_size
        self.path = cache_path(ws, self.size)
        self._lock = None
        self._file = None
        self.start = 0
        self.count = 0

    def __enter__(self) -> CacheWriter:
        self.ws.cache_dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.ws.cache_dir / "ingest.lock", "w")  # noqa: SIM115 - held until exit
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # waits for another ingest to finish
        self.start = self.ws.store.next_cache_index()
        committed = self.start * row_bytes(self.size)
        self._file = open(self.path, "a+b")  # noqa: SIM115 - closed in __exit__
        if os.fstat(self._file.fileno()).st_size < committed:
            raise CacheError(f"{self.path} is shorter than the database says; the cache was damaged. "
                             "Ingest into a new workspace.")
        self._file.truncate(committed)  # drop rows of an ingest that never committed
        self._file.seek(committed)
        return self

    @property
    def next_index(self) -> int:
        return self.start + self.count

    def append(self, rows: np.ndarray) -> range:
        """Append uint8 rows (k, S, S, 3); returns their cache indices."""
        rows = np.ascontiguousarray(rows, dtype=np.uint8)
        if rows.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"cache rows must be (k, {self.size}, {self.size}, 3), got {rows.shape}")
        first = self.next_index
        self._file.write(rows.tobytes())
        self.count += len(rows)
        return range(first, first + len(rows))

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
