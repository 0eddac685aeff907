"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

The one fsync rule, for every file sslapp publishes by renaming:

1. write the data to a temporary name in the target's own folder (a rename across file
   systems is not atomic, so never /tmp);
2. fsync the data before the rename that makes it visible, so a crash cannot publish a
   name that points at blocks never written;
3. fsync the folder after the rename, so the rename itself survives a power cut.

On any error (a full disk included) the temporary file is removed and the old file, if any,
is left untouched. `fsync_path` is the same rule for callers that publish a whole folder
(the exporter fsyncs each file, then the folder, then renames it into place).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file's data or a folder's entries.

    A few file systems cannot fsync a folder (EINVAL, ENOTSUP); there it is skipped, as the
    data itself was synced already.
    """
    is_dir = os.path.isdir(path)
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if is_dir else 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if not is_dir or exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """A hidden, unique name beside `path` (same folder, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on a clean exit it replaces `path` (see the fsync rule).

    The caller must create the file at the yielded path. If the block raises, the temporary
    file is removed, the error propagates and `path` is unchanged.
    """
    target = Path(path)
    tmp = temp_name(target)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(target.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
