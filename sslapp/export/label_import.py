"""Bring a label file in, all or nothing: read it (any format), match each entry to an item, store.

`sslapp label` and the app's label upload both call `import_label_file`. An entry finds its item by
the file's content hash (`sha256`, so a file from another workspace finds the same images), else
by its path (the source as ingested, or its end: `/data/cats/1.png` fits `cats/1.png`; Label
Studio's `?d=` local-file links and upload prefixes are undone), else by the item id when the entry
names nothing else. Any bad entry (an unknown item, a class the user did not allow, two classes for
one item, ...) refuses the whole file with every problem named, and nothing stored changes.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sslapp.export.label_formats import (
    LabelEntry,
    LabelFileError,
    LabelRead,
    detect_json,
    read_coco,
    read_label_studio,
    read_sslapp_json,
    upload_name,
)
from sslapp.export.labels import label_data_key, read_label_csv
from sslapp.workspace import Workspace

IMPORT_FORMATS = ("auto", "csv", "json", "label-studio", "coco")
SHOWN_PROBLEMS = 20  # a message lists this many problems, then counts the rest


class LabelImportError(ValueError):
    """A label file with bad entries: every problem (where, what), and nothing was stored."""

    def __init__(self, path: str | os.PathLike, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"  {where}: {reason}" for where, reason in problems[:SHOWN_PROBLEMS]]
        if len(problems) > SHOWN_PROBLEMS:
            lines.append(f"  ... and {len(problems) - SHOWN_PROBLEMS} more")
        count = f"{len(problems)} problem" + ("" if len(problems) == 1 else "s")
        super().__init__(f"{Path(path).name}: {count}, so nothing was imported (fix the file and import it "
                         "again):\n" + "\n".join(lines))


@dataclass
class LabelImport:
    """What an import stored: labels per class and annotator, and what the file held besides."""

    format: str
    labelled: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    annotators: dict[str, int] = field(default_factory=dict)
    new_classes: list[str] = field(default_factory=list)
    propagated: int = 0
    unlabelled: int = 0

    def summary(self) -> dict[str, Any]:
        return {"format": self.format, "labelled": self.labelled, "classes": self.classes,
                "annotators": self.annotators, "new_classes": self.new_classes,
                "propagated_left_out": self.propagated, "unlabelled_left_out": self.unlabelled}


def read_label_file(path: str | os.PathLike, fmt: str = "auto", data_key: str = "image") -> LabelRead:
    """Read a label file in `fmt` (`auto`: CSV by the name, JSON kinds by their content)."""
    path = Path(path)
    if fmt not in IMPORT_FORMATS:
        raise LabelFileError(f"unknown label format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    if fmt == "csv" or (fmt == "auto" and path.suffix.lower() == ".csv"):
        return read_label_csv(path)
    if fmt == "auto" and path.suffix.lower() != ".json":
        raise LabelFileError(f"{path.name}: a label file ends in .csv or .json (Label Studio, COCO or sslapp's)")
    try:
        obj = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelFileError(f"cannot read {path.name} as UTF-8 JSON ({exc})") from exc
    try:
        kind = detect_json(obj) if fmt == "auto" else fmt
        if kind == "label-studio":
            return read_label_studio(obj, data_key)
        return read_coco(obj) if kind == "coco" else read_sslapp_json(obj)
    except LabelFileError as exc:
        raise LabelFileError(f"{path.name}: {exc}") from None


# -- matching entries to items ----------------------------------------------------------------------
def _norm(path: str) -> str:
    out = posixpath.normpath(path.replace("\\", "/"))
    return "" if out == "." else out


def _spellings(path: str) -> list[str]:
    """The ways a file may be named in another tool: a Label Studio local-file link (`?d=`), a URL's
    path, an upload with Label Studio's `8f7e2a1c-` prefix."""
    parts = urlsplit(path)
    local = parse_qs(parts.query).get("d") if parts.query else None
    if local:
        return [local[0]]
    if parts.scheme and parts.netloc:
        path = parts.path
    out = [path]
    plain = upload_name(posixpath.basename(path.replace("\\", "/")))
    return out + ([plain] if plain else [])


class ItemIndex:
    """The workspace's items by id, content hash, path and the end of the path."""

    def __init__(self, items: list[dict[str, Any]]):
        self.by_id = {it["id"]: it for it in items}
        self.by_sha = {it["sha256"]: it["id"] for it in items}
        self.full: dict[str, list[int]] = defaultdict(list)
        self.tails: dict[str, set[int]] = defaultdict(set)
        for it in items:
            norm = _norm(it["source"])
            self.full[norm].append(it["id"])
            parts = norm.split("/")
            for i in range(1, len(parts)):
                self.tails["/".join(parts[i:])].add(it["id"])

    def by_path(self, path: str) -> list[int]:
        """Items the path fits: exactly, by the path's end (a longer path), or by the source's end."""
        for spelling in _spellings(path):
            norm = _norm(spelling)
            parts = norm.split("/")
            found = self.full.get(norm) or next(
                (self.full[t] for t in ("/".join(parts[i:]) for i in range(1, len(parts))) if t in self.full),
                None) or sorted(self.tails.get(norm, ()))
            if found:
                return list(found)
        return []

    def fits(self, item_id: int, path: str) -> bool:
        return item_id in self.by_path(path)

    def find(self, entry: LabelEntry) -> tuple[int | None, str | None]:
        """(item id, None) or (None, why no item)."""
        if entry.sha256 and entry.sha256 in self.by_sha:
            return self.by_sha[entry.sha256], None
        if entry.item_id in self.by_id and (entry.path is None or self.fits(entry.item_id, entry.path)):
            return entry.item_id, None
        if entry.path:
            found = self.by_path(entry.path)
            if len(found) == 1:
                return found[0], None
            if found:
                return None, f"{entry.path!r} fits {len(found)} items; give the item id or the full path"
            return None, f"no item in this workspace is {entry.path!r} (its path as ingested, or its end)"
        return None, f"no item with id {entry.item_id}"


def resolve(ws: Workspace, read: LabelRead, allow_new: bool = True,
            annotator: str | None = None) -> tuple[list[tuple[int, str, str | None]], list[tuple[str, str]]]:
    """(item id, class, annotator) for every entry, and the problems (where, what); `annotator` is kept
    for entries whose file names none."""
    index = ItemIndex(ws.store.items())
    known = {c["name"] for c in ws.store.classes()}
    problems = list(read.bad)
    chosen: dict[int, tuple[LabelEntry, str]] = {}
    for entry in read.entries:
        name = entry.class_name.strip()
        if name not in known and not allow_new:
            problems.append((entry.where, f"unknown class {name!r} (known: {', '.join(sorted(known)) or 'none'}); "
                                          "allow new classes to create it"))
            continue
        item_id, why = index.find(entry)
        if item_id is None:
            problems.append((entry.where, why or "no such item"))
            continue
        earlier = chosen.get(item_id)
        if earlier is not None and earlier[1] != name:
            problems.append((entry.where, f"gives {index.by_id[item_id]['source']!r} the class {name!r}, but "
                                          f"{earlier[0].where} gives it {earlier[1]!r}; keep one"))
            continue
        chosen[item_id] = (entry, name)
    labels = [(item_id, name, entry.annotator or annotator) for item_id, (entry, name) in chosen.items()]
    return labels, sorted(problems, key=lambda p: _order(p[0]))


def _order(where: str) -> tuple[str, int]:
    kind, _, rest = where.partition(" ")
    number = rest.split(" ")[0]
    return kind, int(number) if number.isdigit() else 0


def import_label_file(ws: Workspace, path: str | os.PathLike, fmt: str = "auto", allow_new: bool = True,
                      annotator: str | None = None) -> LabelImport:
    """Read, match and store a label file's labels (source `imported`, one undoable action), all or nothing.

    Raises LabelFileError (unreadable) or LabelImportError (bad entries); in both cases nothing is stored.
    """
    read = read_label_file(path, fmt, data_key=label_data_key(ws))
    labels, problems = resolve(ws, read, allow_new, annotator)
    if problems:
        raise LabelImportError(path, problems)
    known = {c["name"] for c in ws.store.classes()}
    out = LabelImport(read.format, propagated=read.propagated, unlabelled=read.unlabelled)
    out.labelled = ws.store.import_labels(labels, source="imported", action="import")
    for _, name, who in labels:
        out.classes[name] = out.classes.get(name, 0) + 1
        out.annotators[who or "(not known)"] = out.annotators.get(who or "(not known)", 0) + 1
    out.new_classes = sorted(set(out.classes) - known)
    return out

