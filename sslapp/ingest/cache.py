"""The memory-mapped training cache: `cache/<kind>-<S>.<dtype>`, one row per item, the row's shape
and dtype the workspace modality's (`Modality.cache_row`; images: `images-<S>.u8`, (S, S, 3) uint8).

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

from sslapp.modalities import Modality, workspace_modality
from sslapp.workspace import Workspace

_SUFFIX = {"uint8": "u8", "int32": "i32", "int16": "i16", "float16": "f16", "float32": "f32"}


class CacheError(RuntimeError):
    """The cache file does not match the database (deleted or truncated by hand)."""


def row_spec(ws: Workspace, modality: Modality | None = None) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one cache row in this workspace (of `modality` before the first ingest fixes it)."""
    shape, dtype = (modality or workspace_modality(ws)).cache_row(ws.cache_size)
    return tuple(shape), np.dtype(dtype)


def cache_path(ws: Workspace, size: int | None = None, modality: Modality | None = None) -> Path:
    modality = modality or workspace_modality(ws)
    _, dtype = modality.cache_row(size or ws.cache_size)
    return ws.cache_dir / f"{modality.plural}-{size or ws.cache_size}.{_SUFFIX[str(np.dtype(dtype))]}"


def row_bytes(ws: Workspace, modality: Modality | None = None) -> int:
    shape, dtype = row_spec(ws, modality)
    return int(np.prod(shape)) * dtype.itemsize


def read_cache(ws: Workspace) -> np.ndarray:
    """Read-only memmap (N, *row shape) of every committed row; row i is `items.cache_index == i`."""
    shape, dtype = row_spec(ws)
    n = ws.store.next_cache_index()
    path = cache_path(ws)
    if n == 0:
        return np.zeros((0, *shape), dtype=dtype)
    have, one = (path.stat().st_size if path.exists() else 0), row_bytes(ws)
    if have < n * one:
        noun = workspace_modality(ws).plural
        raise CacheError(f"{path} holds {have // one} {noun} but the database has {n}; "
                         f"the cache was damaged. Re-ingest the {noun} into a new workspace.")
    return np.memmap(path, dtype=dtype, mode="r", shape=(n, *shape))


class CacheWriter:
    """Appends rows under an exclusive lock; `sync()` makes them durable before the DB commit."""

    def __init__(self, ws: Workspace, modality: Modality | None = None):
        self.ws, self.modality = ws, modality
        self.shape, self.dtype = row_spec(ws, modality)
        self.path = cache_path(ws, modality=modality)
        self._lock = None
        self._file = None
        self.start = 0
        self.count = 0

    def __enter__(self) -> CacheWriter:
        self.ws.cache_dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.ws.cache_dir / "ingest.lock", "w")  # noqa: SIM115 - held until exit
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # waits for another ingest to finish
        self.start = self.ws.store.next_cache_index()
        committed = self.start * row_bytes(self.ws, self.modality)
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
        """Append rows (k, *row shape); returns their cache indices."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape:
            raise ValueError(f"cache rows must be (k, {', '.join(map(str, self.shape))}), got {rows.shape}")
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
