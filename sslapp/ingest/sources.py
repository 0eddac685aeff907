"""Where images come from: files, folders (recursive) and zip archives, read safely.

Every entry comes out as a `SourceItem` holding either the file's bytes or the reason it
could not be read, so one bad file never stops the rest. Zip members are read into memory,
never extracted, and an archive is checked before reading: member paths that would escape
a folder (``../``, absolute paths) are refused, and member count, member size, total
uncompressed size and compression ratio are capped against zip bombs.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MAX_FILE_BYTES = 256 * 1024 * 1024
# Never images, and shipped with most data sets: skipped without a report line.
JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", "README", "README.md", "README.txt", "LICENSE",
              "LICENSE.md", "LICENSE.txt"}
JUNK_DIRS = {"__MACOSX", ".git", ".ipynb_checkpoints"}


@dataclass(frozen=True)
class ZipLimits:
    """Caps that make a zip bomb a clear error instead of a full disk or memory."""

    max_members: int = 100_000
    max_member_bytes: int = MAX_FILE_BYTES
    max_total_bytes: int = 8 * 1024 ** 3
    max_ratio: float = 200.0  # uncompressed/compressed above this, for members over 1 MiB
    ratio_floor_bytes: int = 1024 * 1024


DEFAULT_LIMITS = ZipLimits()


@dataclass
class SourceItem:
    """One candidate image: `data` is its bytes, or `error` says why it could not be read."""

    name: str  # printable source name: a path, or "archive.zip:member/path"
    data: bytes | None = None
    error: str | None = None
    label: str | None = None  # the parent folder name, for ImageFolder-style labels
    ext: str = ""
    notes: list[str] = field(default_factory=list)


def printable(name: str) -> tuple[str, bool]:
    """A name that encodes as UTF-8 (undecodable bytes become U+FFFD) and whether it changed."""
    try:
        name.encode("utf-8")
        return name, False
    except UnicodeEncodeError:
        raw = os.fsencode(name)
        return raw.decode("utf-8", errors="replace"), True


def _item(name: str, **kw) -> SourceItem:
    shown, changed = printable(name)
    item = SourceItem(name=shown, **kw)
    if changed:
        item.notes.append("file name is not valid UTF-8; undecodable bytes are shown as \ufffd")
    if item.label is not None:
        item.label = printable(item.label)[0]
    item.ext = os.path.splitext(shown)[1].lower()[:10]
    return item


def _read_file(path: str | Path, name: str, label: str | None) -> SourceItem:
    try:
        st = os.stat(path)  # follows symlinks, so a dangling link fails here
    except FileNotFoundError:
        reason = "broken symbolic link (its target does not exist)" if os.path.islink(path) else "file not found"
        return _item(name, error=f"unreadable: {reason}", label=label)
    except OSError as exc:
        return _item(name, error=f"unreadable: {exc.strerror or exc}", label=label)
    if stat.S_ISDIR(st.st_mode):
        return _item(name, error="unreadable: is a folder, not a file", label=label)
    if not stat.S_ISREG(st.st_mode):
        return _item(name, error="unreadable: not a regular file (a pipe, socket or device)", label=label)
    if st.st_size > MAX_FILE_BYTES:
        return _item(name, error=f"too-large: {st.st_size:,} bytes (limit {MAX_FILE_BYTES:,})", label=label)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except PermissionError:
        return _item(name, error="unreadable: permission denied; check the file's permissions", label=label)
    except OSError as exc:
        return _item(name, error=f"unreadable: {exc.strerror or exc}", label=label)
    if len(data) > MAX_FILE_BYTES:
        return _item(name, error=f"too-large: over {MAX_FILE_BYTES:,} bytes", label=label)
    return _item(name, data=data, label=label)


def _unsafe_member(name: str) -> str | None:
    """Why a zip member path is unsafe (would leave the target folder), or None."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "unsafe-path: absolute path in the archive (would be written outside its folder)"
    if ".." in PurePosixPath(norm).parts:
        return "unsafe-path: '..' in the archive path (would be written outside its folder)"
    return None


def _is_junk(parts: Iterable[str]) -> bool:
    parts = list(parts)
    return (any(p in JUNK_DIRS for p in parts[:-1]) or (parts and parts[-1] in JUNK_NAMES)
            or bool(parts and parts[-1].startswith("._")))


def iter_zip(path: Path, display: str, limits: ZipLimits = DEFAULT_LIMITS) -> Iterator[SourceItem]:
    """Members of a zip archive, checked for unsafe paths and bombs before anything is read."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        yield _item(display, error=f"corrupt-archive: not a readable zip archive ({exc})")
        return
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > limits.max_members:
            yield _item(display, error=f"zip-bomb: {len(infos):,} members (limit {limits.max_members:,}); "
                                       "split the archive")
            return
        total = sum(i.file_size for i in infos)
        if total > limits.max_total_bytes:
            yield _item(display, error=f"zip-bomb: {total:,} bytes uncompressed "
                                       f"(limit {limits.max_total_bytes:,}); split the archive")
            return
        read_total = 0
        for info in infos:
            name = f"{display}:{info.filename}"
            parts = PurePosixPath(info.filename.replace("\\", "/")).parts
            if _is_junk(parts):
                continue
            label = parts[-2] if len(parts) >= 2 else None
            unsafe = _unsafe_member(info.filename)
            if unsafe:
                yield _item(name, error=unsafe)
                continue
            if info.file_size > limits.max_member_bytes:
                yield _item(name, error=f"zip-bomb: member is {info.file_size:,} bytes uncompressed "
                                        f"(limit {limits.max_member_bytes:,})", label=label)
                continue
            if (info.file_size > limits.ratio_floor_bytes
                    and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
                yield _item(name, error=f"zip-bomb: compresses {info.file_size / max(info.compress_size, 1):,.0f}"
                                        f" to 1 (limit {limits.max_ratio:,.0f}); not a real image", label=label)
                continue
            if PurePosixPath(info.filename).suffix.lower() == ".zip":
                yield _item(name, error="nested-archive: unzip it and add its contents", label=label)
                continue
            try:
                with zf.open(info) as member:  # read at most the cap: the header's size may lie
                    data = member.read(limits.max_member_bytes + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
                yield _item(name, error=f"corrupt-archive: cannot read this member ({exc})", label=label)
                continue
            read_total += len(data)
            if len(data) > limits.max_member_bytes or read_total > limits.max_total_bytes:
                yield _item(name, error="zip-bomb: member is larger than its header says", label=label)
                return
            yield _item(name, data=data, label=label)


def _walk(root: Path, display: str) -> Iterator[tuple[str, str, str | None]]:
    """(path, display name, parent-folder label) of every file under root, sorted; errors as items."""
    errors: list[OSError] = []
    display = "" if display == "." else display  # relative to a base that is the folder itself
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in JUNK_DIRS)
        rel_dir = os.path.relpath(dirpath, root)
        shown_dir = display if rel_dir == "." else os.path.join(display, rel_dir)  # "" joins cleanly
        label = None if rel_dir == "." else os.path.basename(rel_dir)
        for fname in sorted(filenames):
            if _is_junk([fname]):
                continue
            yield os.path.join(dirpath, fname), os.path.join(shown_dir, fname), label
        yield from _walk_errors(errors, root, display)  # folders os.walk could not list
    yield from _walk_errors(errors, root, display)


def _walk_errors(errors: list[OSError], root: Path, display: str) -> Iterator[tuple[str, str, str | None]]:
    while errors:
        exc = errors.pop(0)
        where = Path(exc.filename) if exc.filename else root
        try:
            shown = str(Path(display) / where.relative_to(root))
        except ValueError:
            shown = str(where)
        yield str(where), shown, "\0error:" + (exc.strerror or str(exc))


def iter_sources(paths: Iterable[str | os.PathLike], limits: ZipLimits = DEFAULT_LIMITS,
                 base: str | os.PathLike | None = None) -> Iterator[SourceItem]:
    """Every candidate image under `paths` (files, folders read recursively, zip archives).

    With `base`, names are shown relative to it (uploads land in a temporary folder).
    """
    for raw in paths:
        path = Path(raw)
        display = os.fspath(raw)
        if base is not None:
            try:
                display = os.path.relpath(display, base)
            except ValueError:
                pass
        if path.is_dir():
            for file_path, name, label in _walk(path, display):
                if label is not None and label.startswith("\0error:"):
                    yield _item(name, error=f"unreadable: cannot list this folder ({label[7:]})")
                elif os.path.splitext(file_path)[1].lower() == ".zip" and zipfile.is_zipfile(file_path):
                    yield from iter_zip(Path(file_path), name, limits)
                else:
                    yield _read_file(file_path, name, label)
        elif path.suffix.lower() == ".zip" and path.is_file():
            yield from iter_zip(path, display, limits)
        elif not path.exists() and not path.is_symlink():
            yield _item(display, error="not-found: no such file or folder")
        else:
            yield _read_file(path, display, None)
