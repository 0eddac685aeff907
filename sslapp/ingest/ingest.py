"""`ingest(ws, sources)`: add items to a workspace, all or nothing, with a reason per skipped file.

Each new item is decoded once (in a small process pool) by the workspace's modality into its cache
row and preview, and its original bytes are kept. The first ingest fixes the workspace's modality;
files of another kind are refused (all of them: `ModalityError`, nothing changes) or skipped one by
one with a reason (when mixed with files of the workspace's kind). Duplicates are found by SHA-256, within the batch and against
the workspace. The new items (and imported folder labels) are inserted in one database
transaction after the cache rows are on disk, so a failure or a cancel changes nothing the
workspace already held.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import numpy as np

from sslapp.ingest.cache import CacheWriter
from sslapp.ingest.sources import DEFAULT_LIMITS, SourceItem, ZipLimits, iter_sources
from sslapp.modalities import (
    MODALITY_SETTING,
    BadItem,
    Modality,
    ModalityError,
    claimed_by,
    get_modality,
    preview_file,
)
from sslapp.workspace import FIXED_CACHE_SETTING, Workspace

CHUNK = 512
POOL_MIN = 128  # fewer new images in a chunk decode faster inline than a pool starts
PEEK = 32  # a new workspace holds the kind most of its first PEEK files of a known kind are
PEEK_MAX = 256  # files read ahead at most for that (unknown kinds and unreadable files count here)


def _prepare_one(args: tuple[str, bytes, int, dict[str, Any], str, str, str | None]) -> tuple[str, Any]:
    """Decode one file into its items and write their previews and the original (runs in a pool process).

    Returns ("bad", reason) for an unusable file, else ("ok", [(sha, row, info, part, label, error)]).
    An item's sha is its file's (one item per file) or that of its `Decoded.key`. Files are written
    directly: they are named by content hash and only for items not yet committed, so a retry after
    a crash simply rewrites them.
    """
    modality, data, size, options, file_sha, previews, original_path = args
    modality = get_modality(modality)
    try:
        decoded = modality.decode(data, size, options)
    except BadItem as exc:
        return "bad", f"{exc.kind}: {exc}"
    except MemoryError:
        return "bad", f"too-large: not enough memory to decode this {modality.noun}"
    except Exception as exc:  # a decoder bug on odd input is still that file's problem only
        return "bad", f"corrupt: the decoder failed ({exc.__class__.__name__}: {exc})"
    parts = []
    for d in decoded:
        sha = file_sha if d.key is None else hashlib.sha256(d.key).hexdigest()
        if d.error is None and modality.preview_ext:
            path = preview_file(previews, sha, modality.preview_ext)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(d.preview or b"")
        parts.append((sha, d.row, d.info, d.part, d.label, d.error))
    if original_path is not None:
        with open(original_path, "wb") as f:
            f.write(data)
    return "ok", parts


def _modality_for(ws: Workspace, items: Iterator[SourceItem], wanted: str | None
                  ) -> tuple[Modality, Iterator[SourceItem]]:
    """The workspace's modality; before its first ingest, `wanted` or the kind most of the first files some
    modality reads are (ties: the kind seen first; images when none is read), so that a labels.csv beside
    a folder of photos does not make an image data set a text workspace. Returns the items still to
    read, the peeked ones first."""
    fixed = ws.store.get_setting(MODALITY_SETTING)
    if fixed or wanted:
        if fixed and wanted and wanted != fixed:
            raise ModalityError(f"this workspace holds {get_modality(fixed).plural}; it cannot take "
                                f"{get_modality(wanted).plural}. A workspace holds one kind of item: make a new "
                                f"workspace for the {get_modality(wanted).plural}.")
        return get_modality(fixed or wanted), items
    peeked: list[SourceItem] = []
    counts: dict[str, int] = {}  # in the order first seen
    for item in items:
        peeked.append(item)
        kinds = claimed_by(item.name)
        if item.error is None and kinds:
            counts[kinds[0]] = counts.get(kinds[0], 0) + 1
        if sum(counts.values()) >= PEEK or len(peeked) >= PEEK_MAX:
            break
    name = max(counts, key=counts.__getitem__) if counts else "image"  # max keeps the first of equals
    return get_modality(name), itertools.chain(peeked, items)


def _foreign(modality: Modality, file_name: str) -> str | None:
    """The kind of item a file is when the workspace's modality does not read it, else None."""
    kinds = claimed_by(file_name)
    return kinds[0] if kinds and modality.name not in kinds else None


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
           record: bool = True, modality: str | None = None, options: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    """Add every usable item under `sources`; returns {"added", "duplicates", "skipped", ...}.

    `sources` are paths (files, folders, zips) or ready `SourceItem`s. `should_stop` is called
    between chunks and may raise to abort (nothing is committed then). `base` shortens the
    stored source names to paths relative to it. `modality` names the kind of item a new workspace
    will hold (default: the kind most of its first files are); `options` go to its decoder (e.g.
    {"text_column", "label_column"}; ingest adds each file's suffix as "ext"). Notes about a file or
    an added item (`Decoded.info["file_notes"]`, `["note"]`) go into the report's "notes".
    The report is stored with the workspace.
    Raises ModalityError, changing nothing, when every file is of another kind than the workspace's.
    """
    started = time.monotonic()
    store = ws.store
    sources = list(sources)
    items = (iter(sources) if sources and isinstance(sources[0], SourceItem)
             else iter_sources(sources, limits=limits, base=base))
    kind, items = _modality_for(ws, items, modality)
    if kind.fixed_cache_size is not None and store.count_items() == 0:
        store.set_setting("cache_size", kind.fixed_cache_size)  # e.g. sounds: their log-mel picture's side
    if store.get_setting("cache_size") is None:
        store.set_setting("cache_size", ws.cache_size)  # fixed from the first ingest on
    size = ws.cache_size
    foreign: dict[str, int] = {}
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
        with CacheWriter(ws, kind) as cache:
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
                    other = _foreign(kind, item.name)
                    if other is not None:
                        foreign[other] = foreign.get(other, 0) + 1
                        skipped.append({"source": item.name, "reason": f"wrong-kind: a {get_modality(other).noun} file; "
                                        f"this workspace holds {kind.plural} (make a new workspace for "
                                        f"{get_modality(other).plural})"})
                        continue
                    sha = hashlib.sha256(item.data).hexdigest()
                    if kind.one_item_per_file and sha in seen:
                        if seen[sha] is None:
                            duplicates += 1
                        else:
                            skipped.append({"source": item.name, "reason": seen[sha]})
                        continue
                    if kind.one_item_per_file:
                        seen[sha] = None
                    todo.append((item, sha))
                if kind.one_item_per_file:  # a file is its item: known files need no decoding
                    stored = store.known_hashes(sha for _, sha in todo)
                    duplicates += sum(1 for _, sha in todo if sha in stored)
                    todo = [(item, sha) for item, sha in todo if sha not in stored]
                jobs = []
                for item, sha in todo:
                    original = None
                    if keep_originals:
                        ext = item.ext if item.ext in kind.original_exts else ""
                        original = os.path.join(originals, sha[:2], f"{sha}{ext or '.img'}")
                        ensure_dir(os.path.dirname(original))
                    told = {**(options or {}), "ext": item.ext}  # the decoder knows a table by its suffix
                    jobs.append((kind.name, item.data, size, told, sha, thumbs, original))
                if workers > 1 and len(jobs) >= POOL_MIN:
                    if pool is None:  # started lazily: a handful of files decodes faster inline
                        pool = ProcessPoolExecutor(workers)
                    results = pool.map(_prepare_one, jobs, chunksize=16)
                else:
                    results = map(_prepare_one, jobs)
                decoded: list[tuple[SourceItem, str, tuple]] = []  # (file, its original, one item)
                for (item, sha), job, (status, value) in zip(todo, jobs, results, strict=True):
                    if status == "bad":
                        if kind.one_item_per_file:
                            seen[sha] = value
                        skipped.append({"source": item.name, "reason": value})
                        continue
                    original = _original_name(job[6], sha, value)
                    for part in value:
                        source = f"{item.name}:{part[3]}" if part[3] else item.name
                        for note in part[2].get("file_notes", ()):  # about the whole file
                            notes.append({"source": item.name, "note": note})
                        if part[5] is not None:
                            skipped.append({"source": source, "reason": part[5]})
                        else:
                            decoded.append((item, original, (source, *part)))
                if not kind.one_item_per_file:  # many items per file: each is its own duplicate or not
                    stored = store.known_hashes(d[2][1] for d in decoded)
                    fresh = []
                    for d in decoded:
                        if d[2][1] in seen or d[2][1] in stored:
                            duplicates += 1
                        else:
                            seen[d[2][1]] = None
                            fresh.append(d)
                    decoded = fresh
                arrays = []
                for item, original, (source, sha, array, info, _part, label, _error) in decoded:
                    arrays.append(array)
                    rows.append({"source": source, "sha256": sha, "width": info.get("width", 0),  # 0: no pixels
                                 "height": info.get("height", 0), "original": original})
                    row_labels.append(label if label is not None else item.label if labels_from_dirs else None)
                    if info.get("note"):
                        notes.append({"source": source, "note": info["note"]})
                if arrays:
                    indices = cache.append(np.stack(arrays))
                    for row, index in zip(rows[-len(arrays):], indices, strict=True):
                        row["cache_index"] = index
                if progress is not None:
                    progress(files=seen_files, added=len(rows), duplicates=duplicates, skipped=len(skipped),
                             message=f"read {seen_files} files, {len(rows)} new {kind.plural}")
            if should_stop is not None:
                should_stop()
            if foreign and not rows:
                raise ModalityError(_refusal(kind, foreign))
            cache.sync()  # rows are on disk before the database points at them
            elapsed = time.monotonic() - started
            report: dict[str, Any] = {
                "added": len(rows), "duplicates": duplicates, "skipped": skipped, "notes": notes,
                "labels": sum(1 for label in row_labels if label), "files": seen_files,
                "seconds": round(elapsed, 3), "images_per_s": round(len(rows) / elapsed, 1) if elapsed else None,
            }
            with store.transaction():
                if rows and store.get_setting(MODALITY_SETTING) is None:
                    store.set_setting(MODALITY_SETTING, kind.name)  # fixed from the first ingest on
                    if kind.fixed_cache_size is not None:  # a cache size asked for later means nothing to it
                        store.set_setting(FIXED_CACHE_SETTING, True)
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


def _refusal(kind: Modality, foreign: dict[str, int]) -> str:
    """Why a whole ingest of another kind of item is refused, naming both kinds and what to do."""
    files = ", ".join(f"{n} {get_modality(k).noun} file{'s' if n != 1 else ''}" for k, n in sorted(foreign.items()))
    others = " or ".join(get_modality(k).plural for k in sorted(foreign))
    return (f"This workspace holds {kind.plural}, and these sources hold {others} ({files}); nothing was added. "
            f"A workspace holds one kind of item: make a new workspace for the {others}.")


def _original_name(path: str | None, file_sha: str, parts: list[tuple]) -> str | None:
    """The stored original's path relative to the workspace; one without a usable suffix is renamed
    after its format (`Decoded.info["ext"]`) once decoded."""
    if path is None:
        return None
    ext = path[path.rindex(file_sha) + len(file_sha):]
    named = next((p[2].get("ext") for p in parts if p[2].get("ext")), None)
    if ext == ".img" and named and os.path.exists(path):
        ext = named
        os.replace(path, path[:-4] + ext)
    return f"originals/{file_sha[:2]}/{file_sha}{ext}"
