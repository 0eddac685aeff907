"""A workspace: one folder per project holding the database and every file sslapp writes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sslapp.store import Store

DB_NAME = "sslapp.db"
DEFAULT_CACHE_SIZE = 64
FIXED_CACHE_SETTING = "cache_size_fixed"  # True: the items' kind fixes the cache size (sounds), not the user
THUMB_SIZE = 96
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class WorkspaceError(ValueError):
    """A workspace path or name that cannot be used, with what to do instead."""


@dataclass
class Workspace:
    root: Path
    store: Store

    # folders ---------------------------------------------------------------------
    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def thumbs_dir(self) -> Path:
        return self.root / "thumbs"

    @property
    def originals_dir(self) -> Path:
        return self.root / "originals"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def embeddings_dir(self) -> Path:
        return self.root / "embeddings"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def cache_size(self) -> int:
        """Side in pixels of the square uint8 training cache; fixed once the first image is in."""
        return int(self.store.get_setting("cache_size", DEFAULT_CACHE_SIZE))

    def job_log_path(self, job_id: int) -> Path:
        return self.logs_dir / f"job-{job_id}.log"

    def ensure_dirs(self) -> None:
        for d in (self.cache_dir, self.thumbs_dir, self.originals_dir, self.checkpoints_dir,
                  self.embeddings_dir, self.exports_dir, self.logs_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)


def open_workspace(path: str | os.PathLike, create: bool = True, cache_size: int | None = None) -> Workspace:
    """Open (and by default create) the workspace folder at `path` (a symlink is followed)."""
    _refuse_broken_link(Path(path).expanduser())
    root = Path(path).expanduser().resolve()
    db = root / DB_NAME
    if not db.exists():
        if not create:
            raise WorkspaceError(f"{root} is not an sslapp workspace (no {DB_NAME}); create it with "
                                 f"`sslapp ingest {root} IMAGES...` or from the app.")
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root} exists and is not a folder; pick another workspace path.")
        root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root=root, store=Store(db))
    ws.ensure_dirs()
    if cache_size is not None and not _fixed_cache_size(ws):
        current = ws.store.get_setting("cache_size")
        if current is None or (int(current) != cache_size and ws.store.count_items() == 0):
            if not 16 <= cache_size <= 512:
                raise WorkspaceError(f"cache size {cache_size} is out of range; use 16 to 512 pixels.")
            ws.store.set_setting("cache_size", int(cache_size))
        elif int(current) != cache_size:
            raise WorkspaceError(f"{root} already caches images at {current} px; make a new workspace "
                                 f"to use {cache_size} px.")
    return ws


def _fixed_cache_size(ws: Workspace) -> bool:
    """Whether the workspace holds a kind of item whose cache size is its own (sounds: their log-mel picture's
    side), so a cache size asked for means nothing to it (its first ingest says so in FIXED_CACHE_SETTING)."""
    return bool(ws.store.get_setting(FIXED_CACHE_SETTING)) and ws.store.count_items() > 0


def child_workspace(parent: str | os.PathLike, name: str) -> Path:
    """The folder for workspace `name` under `parent`.

    The name is a plain name (no slashes, no `..`), so it never points outside `parent` by itself;
    the folder it names may be a symlink to another disk (people keep big data elsewhere), and
    `open_workspace` follows it. A link to a folder that is not there (a disk not mounted) is refused.
    """
    if not _SAFE_NAME.fullmatch(name or "") or name in (".", ".."):
        raise WorkspaceError(f"{name!r} is not a valid workspace name: use letters, digits, '.', '_' or '-' "
                             "(up to 64, starting with a letter or digit).")
    target = Path(parent).expanduser().resolve() / name
    _refuse_broken_link(target)
    return target


def _refuse_broken_link(path: Path) -> None:
    """A symlink whose target is missing would make (and fill) a folder where the disk should be."""
    if path.is_symlink() and not path.exists():
        raise WorkspaceError(f"{path} is a link to {os.readlink(path)}, which is not there (a disk that is not "
                             "mounted?); connect it, or pick another workspace.")
