"""An ImageFolder tree (`<class>/<id>_<name>.<ext>`) of the originals a person labelled.

Only human labels (user, imported) go in: the tree is meant for training elsewhere, and a
machine guess in it would pass for a person's label. Class and file names are made safe on
every OS, and two classes never share a folder (even on case-insensitive file systems).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from sslapp.export.labels import HUMAN_SOURCES
from sslapp.workspace import Workspace

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(name: str, fallback: str) -> str:
    """A file or folder name that is safe on every OS (no separators, no leading dot)."""
    cleaned = _UNSAFE.sub("_", name).strip(" .")[:100]
    return cleaned or fallback


def write_imagefolder(ws: Workspace, rows: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """Copy the originals of human-labelled items to `folder/<class>/<id>_<name>`; returns a summary."""
    class_dirs: dict[str, str] = {}
    used: set[str] = set()
    copied, missing = 0, []
    for r in rows:
        if r["source"] not in HUMAN_SOURCES:
            continue
        cls = r["class"]
        if cls not in class_dirs:
            base = safe_name(cls, "class")
            name, n = base, 2
            while name.lower() in used:  # distinct classes must not share a folder
                name, n = f"{base}_{n}", n + 1
            used.add(name.lower())
            class_dirs[cls] = name
            (folder / name).mkdir(parents=True, exist_ok=True)
        src = ws.root / r["original"] if r["original"] else None
        if src is None or not src.is_file():
            missing.append(r["path"])
            continue
        stem = safe_name(PurePosixPath(r["path"].replace("\\", "/").split(":")[-1]).stem, "image")[:60]
        shutil.copyfile(src, folder / class_dirs[cls] / f"{r['item_id']:06d}_{stem}{src.suffix.lower()}")
        copied += 1
    return {"folder": folder.name, "class_folders": class_dirs, "images": copied,
            "missing_originals": len(missing), "missing_examples": missing[:10]}
