"""`ingest(ws, sources)`: add images to a workspace, all or nothing, with a reason per skipped file.

Each new image is decoded once (in a small process pool) into its cache row and thumbnail,
and its original bytes are kept. Duplicates are found by SHA-256, within the batch and against
the workspace. The new items (and imported folder labels) are inserted in one database
transaction after the cache rows are on disk, so a failure or a cancel changes nothing the
workspace already held.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import numpy as np

from sslapp.ingest.cache import CacheWriter
from sslapp.ingest.decode import BadImage, prepare
from sslapp.ingest.sources import DEFAULT_LIMITS, SourceItem, ZipLimits, iter_sources
from sslapp.workspace import Workspace

CHUNK = 512
POOL_MIN = 128  # fewer new images in a chunk decode faster inline than a pool starts
ORIGINAL_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
FORMAT_EXT = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "BMP": ".bmp",
              "TIFF": ".tif", "GIF": ".gif"}


def thumb_file(thumbs_dir: str | os.PathLike[str], sha256: str) -> str:
    """An item's thumbnail, named by its content hash in one of 256 folders (first two hex digits):
    the one place the layout is written, for ingestion that writes it and the pages that read it."""
    return os.path.join(thumbs_dir, sha256[:2], f"{sha256}.jpg")


def _prepare_one(args: tuple[bytes, int, str, str | None]) -> tuple[str, Any]:
    """Decode one image and write its thumbnail and original (runs in a pool process).

    Files are written directly: they are named by content hash and only for items not yet
    committed, so a retry after a crash simply rewrites them.
    """
    data, size, thumb_path, original_path = args
    try:
        p = prepare(data, size)
    except BadImage as exc:
        return "bad", f"{exc.kind}: {exc}"
    except MemoryError:
        return "bad", "too-large: not enough memory to decode this image"
    except Exception as exc:  # a decoder bug on odd input is still that file's problem only
        return "bad", f"corrupt: the decoder failed ({exc.__class__.__name__}: {exc})"
    with open(thumb_path, "wb") as f:
        f.write(p.thumb_jpeg or b"")
    if original_path is not None:
        with open(original_path, "wb") as f:
            f.write(data)
    return "ok", (p.array, p.width, p.height, p.format)


def _chunks(items: Iterator[SourceItem], n: int) -> Iterator[list[SourceItem]]:
    chunk: list[SourceItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def default_workers() -> int:
    """Decode processes: one per core, but none extra on a single core."""
    return max(1, min(4, os.cpu_count() or 1))


def ingest(ws: Workspace, sources: Iterable[str | os.PathLike] | Iterable[SourceItem],
           labels_from_dirs: bool = False, *, workers: int | None = None,
           progress: Callable[..., None] | None = None, should_stop: Callable[[], None] | None = None,
           limits: ZipLimits = DEFAULT_LIMITS, keep_originals: bool = True, base: str | None = None,
           record: bool = True) -> dict[str, Any]:
    """Add every usable image under `sources`; returns {"added", "duplicates", "skipped", ...}.

    `sources` are paths (files, folders, zips) or ready `SourceItem`s. `should_stop` is called
    between chunks and may raise to abort (nothing is committed then). `base` shortens the
    stored source names to paths relative to it. The report is stored with the workspace.
    """
    started = time.monotonic()
    store = ws.store
    if store.get_setting("cache_size") is None:
        store.set_setting("cache_size", ws.cache_size)  # fixed from the first ingest on
    size = ws.cache_size
    sources = list(sources)
    items = (iter(sources) if sources and isinstance(sources[0], SourceItem)
             else iter_sources(sources, limits=limits, base=base))
    workers = default_workers() if workers is None else workers
    skipped: list[dict[str, str]] = []
    notes: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    row_labels: list[str | None] = []
    seen: dict[str, str | None] = {}  # sha -> None when added, else the reason it was skipped
    duplicates = seen_files = 0
    made_dirs: set[str] = set()
    thumbs, originals = str(ws.thumbs_dir), str(ws.originals_dir)

    def ensure_dir(path: str) -> None:
        if path not in made_dirs:
            os.makedirs(path, exist_ok=True)
            made_dirs.add(path)

    pool: Executor | None = None
    try:
        with CacheWriter(ws) as cache:
            for chunk in _chunks(items, CHUNK):
                if should_stop is not None:
                    should_stop()
                todo: list[tuple[SourceItem, str]] = []
                for item in chunk:
                    seen_files += 1
                    for note in item.notes:
                        notes.append({"source": item.name, "note": note})
                    if item.error is not None or item.data is None:
                        skipped.append({"source": item.name, "reason": item.error or "unreadable"})
                        continue
                    sha = hashlib.sha256(item.data).hexdigest()
                    if sha in seen:
                        if seen[sha] is None:
                            duplicates += 1
                        else:
                            skipped.append({"source": item.name, "reason": seen[sha]})
                        continue
                    seen[sha] = None
                    todo.append((item, sha))
                stored = store.known_hashes(sha for _, sha in todo)
                duplicates += sum(1 for _, sha in todo if sha in stored)
                todo = [(item, sha) for item, sha in todo if sha not in stored]
                jobs = []
                for item, sha in todo:
                    thumb = thumb_file(thumbs, sha)
                    ensure_dir(os.path.dirname(thumb))
                    original = None
                    if keep_originals:
                        ext = item.ext if item.ext in ORIGINAL_EXTS else ""
                        original = os.path.join(originals, sha[:2], f"{sha}{ext or '.img'}")
                        ensure_dir(os.path.dirname(original))
                    jobs.append((item.data, size, thumb, original))
                if workers > 1 and len(jobs) >= POOL_MIN:
                    if pool is None:  # started lazily: a handful of files decodes faster inline
                        pool = ProcessPoolExecutor(workers)
                    results = pool.map(_prepare_one, jobs, chunksize=16)
                else:
                    results = map(_prepare_one, jobs)
                arrays = []
                for (item, sha), job, (status, value) in zip(todo, jobs, results, strict=True):
                    if status == "bad":
                        seen[sha] = value
                        skipped.append({"source": item.name, "reason": value})
                        continue
                    array, width, height, fmt = value
                    original = None
                    if job[3] is not None:
                        ext = job[3][job[3].rindex(sha) + len(sha):]
                        if ext == ".img" and fmt in FORMAT_EXT:  # no usable extension: name it by its format
                            ext = FORMAT_EXT[fmt]
                            os.replace(job[3], job[3][:-4] + ext)
                        original = f"originals/{sha[:2]}/{sha}{ext}"
                    arrays.append(array)
                    rows.append({"source": item.name, "sha256": sha, "width": width, "height": height,
                                 "original": original})
                    row_labels.append(item.label if labels_from_dirs else None)
                if arrays:
                    indices = cache.append(np.stack(arrays))
                    for row, index in zip(rows[-len(arrays):], indices, strict=True):
                        row["cache_index"] = index
                if progress is not None:
                    progress(files=seen_files, added=len(rows), duplicates=duplicates, skipped=len(skipped),
                             message=f"read {seen_files} files, {len(rows)} new images")
            if should_stop is not None:
                should_stop()
            cache.sync()  # rows are on disk before the database points at them
            elapsed = time.monotonic() - started
            report: dict[str, Any] = {
                "added": len(rows), "duplicates": duplicates, "skipped": skipped, "notes": notes,
                "labels": sum(1 for label in row_labels if label), "files": seen_files,
                "seconds": round(elapsed, 3), "images_per_s": round(len(rows) / elapsed, 1) if elapsed else None,
            }
            with store.transaction():
                ids = store.add_items(rows) if rows else []
                by_label: dict[str, list[int]] = {}
                for item_id, label in zip(ids, row_labels, strict=True):
                    if label:
                        by_label.setdefault(label, []).append(item_id)
                for label, label_ids in sorted(by_label.items()):
                    store.set_labels(label_ids, store.class_id(label, create=True), source="imported",
                                     action="import")
                if record:
                    store.add_ingest_report(report)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return report
