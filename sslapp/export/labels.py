"""The one label file schema: its columns, the rows of a workspace, the writers and the CSV reader.

`sslapp export` (labels.csv, labels.json, labels.label-studio.json and labels.coco.json in the
export folder), `sslapp labels --export`, the app's label downloads and `sslapp label` all use this
module and `label_formats.py`, so a file one of them writes the others read.

Sources: `user` (labelled in the app or CLI), `imported` (folder names at ingestion, or a label
file), `propagated` (a machine guess: a label stored as propagated, or, in an export, a confident
prediction of the exported classifier for an unlabelled item, with its confidence). The readers
never import `propagated` rows: a guess read back in would become a person's label. `annotator`
is who gave the label (empty where it is not known, e.g. folder names and machine guesses).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from sslapp.atomic import atomic_path
from sslapp.export.label_formats import (
    ANNOTATOR_KEYS,
    MACHINE_SOURCE,
    LabelEntry,
    LabelFileError,
    LabelRead,
    item_number,
    to_coco,
    to_label_studio,
)
from sslapp.modalities import DEFAULT as DEFAULT_MODALITY
from sslapp.modalities import MODALITY_SETTING
from sslapp.workspace import Workspace

__all__ = ["FIELDS", "LABEL_FILES", "LABEL_FORMATS", "LabelFileError", "format_of", "label_data_key", "label_rows",
           "label_text", "read_label_csv", "workspace_label_text", "write_label_file", "write_labels"]

FIELDS = ("item_id", "path", "class", "source", "confidence", "original", "sha256", "annotator")
DEFAULT_PROPAGATE_THRESHOLD = 0.9
HUMAN_SOURCES = ("user", "imported")
LABEL_FORMATS = ("csv", "json", "label-studio", "coco")
# the export folder's label files, one per format
LABEL_FILES = {"labels.csv": ("csv", "labels as CSV"), "labels.json": ("json", "labels as JSON"),
               "labels.label-studio.json": ("label-studio", "labels as a Label Studio export (JSON)"),
               "labels.coco.json": ("coco", "labels as COCO-style classification (JSON)")}
# Header names the reader accepts besides FIELDS: older sslapp files and hand-written ones.
ITEM_COLUMNS = ("item_id", "item", "id", "path", "source_path", "file", "item_source")
PATH_COLUMNS = ("path", "source_path", "file", "item_source")
CLASS_COLUMNS = ("class", "label", "class_name")
LEGACY_ITEM_COLUMN = "source"  # an item column in hand-written files that have no other item column
LABEL_SOURCE_COLUMNS = ("label_source", "source")


def label_rows(ws: Workspace, predictions_run_id: int | None = None,
               threshold: float | None = DEFAULT_PROPAGATE_THRESHOLD) -> list[dict[str, Any]]:
    """One row per labelled item, plus unlabelled items the classifier run predicts with confidence >= threshold.

    `predictions_run_id` is the classifier's run (None: no predictions are added); `threshold=None`
    adds none either.
    """
    store = ws.store
    rows: dict[int, dict[str, Any]] = {
        r["item_id"]: {"item_id": r["item_id"], "class": r["class_name"], "source": r["source"], "confidence": None,
                       "annotator": r["annotator"]}
        for r in store.labels()}
    if predictions_run_id is not None and threshold is not None:
        unlabelled = set(store.unlabeled_ids(include_skipped=True))
        for p in store.predictions(predictions_run_id):
            if p["item_id"] in unlabelled and p["confidence"] >= threshold:
                rows[p["item_id"]] = {"item_id": p["item_id"], "class": p["class_name"], "source": MACHINE_SOURCE,
                                      "confidence": round(float(p["confidence"]), 6), "annotator": None}
    items = {it["id"]: it for it in store.items(ids=sorted(rows))}
    return [{k: v[k] for k in FIELDS} for v in (
        {**rows[i], "path": items[i]["source"], "original": items[i].get("original"), "sha256": items[i]["sha256"]}
        for i in sorted(rows) if i in items)]  # an item removed since has no row


def format_of(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The label format to write or read: `fmt` if given, else by the name (`.csv`, `.label-studio.json`,
    `.coco.json`, `.json`); raises ValueError for any other name."""
    if fmt is not None:
        if fmt not in LABEL_FORMATS:
            raise ValueError(f"unknown label format {fmt!r}; use one of {', '.join(LABEL_FORMATS)}")
        return fmt
    name = Path(path).name.lower()
    for end, found in ((".label-studio.json", "label-studio"), (".coco.json", "coco"), (".csv", "csv"),
                       (".json", "json")):
        if name.endswith(end):
            return found
    raise ValueError(f"{path}: a label file must end in .csv or .json (or name its format)")


def label_text(rows: list[dict[str, Any]], fmt: str, classes: list[str] | None = None,
               data_key: str = "image") -> str:
    """`rows` as the text of a label file in `fmt`.

    `classes` orders the COCO categories (every class, also empty ones); `data_key` is where a Label
    Studio task names its file (the workspace's kind of item: `image`).
    """
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({k: "" if r[k] is None else r[k] for k in FIELDS} for r in rows)
        return out.getvalue()
    obj: Any = (rows if fmt == "json" else to_label_studio(rows, data_key) if fmt == "label-studio"
                else to_coco(rows, classes))
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def write_label_file(rows: list[dict[str, Any]], path: str | os.PathLike, fmt: str | None = None,
                     classes: list[str] | None = None, data_key: str = "image") -> None:
    """Write `rows` in `fmt` (by the name when None), atomically: the old file or the new one, never half."""
    path = Path(path)
    content = label_text(rows, format_of(path, fmt), classes, data_key)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(content)


def workspace_label_text(ws: Workspace, fmt: str) -> str:
    """The workspace's stored labels (no machine guesses) as a label file in `fmt`."""
    return label_text(label_rows(ws), fmt, [c["name"] for c in ws.store.classes()], label_data_key(ws))


def label_data_key(ws: Workspace) -> str:
    """Where a Label Studio task names its file: the workspace's kind of item (`image`)."""
    return str(ws.store.get_setting(MODALITY_SETTING) or DEFAULT_MODALITY)


def write_labels(rows: list[dict[str, Any]], folder: Path, classes: list[str] | None = None,
                 data_key: str = "image") -> dict[str, str]:
    """The label files of an export (one per format) in `folder`; returns {file name: what it is}."""
    for name, (fmt, _) in LABEL_FILES.items():
        write_label_file(rows, folder / name, fmt, classes, data_key)
    return {name: what for name, (_, what) in LABEL_FILES.items()}


def _columns(names: list[str]) -> dict[str, int | None]:
    """Column indices by role from a header row: item (id or path), id, path, sha256, class, source, annotator."""
    def first(options) -> int | None:
        return next((names.index(c) for c in options if c in names), None)

    item = first(ITEM_COLUMNS)
    if item is None:
        item = names.index(LEGACY_ITEM_COLUMN)
    source = next((names.index(c) for c in LABEL_SOURCE_COLUMNS if c in names and names.index(c) != item), None)
    klass = first(CLASS_COLUMNS)
    return {"item": item, "id": first(("item_id",)), "path": first(PATH_COLUMNS), "sha256": first(("sha256",)),
            "class": 1 if klass is None else klass, "source": source, "annotator": first(ANNOTATOR_KEYS)}


def _cells_by_role(cells: list[str], cols: dict[str, int | None]):
    """cell(role): the row's cell in that role's column, None where the column or the value is missing."""
    def cell(role: str) -> str | None:
        i = cols.get(role)
        return (cells[i] or None) if i is not None and i < len(cells) else None
    return cell


def read_label_csv(path: str | os.PathLike) -> LabelRead:
    """Rows `item,class` (item: id or source path), with or without a header; an export's labels.csv too.

    A header is recognised by its first cell (`item_id`, `path`, ...); then columns are found by
    name (also `sha256` and `annotator`). Blank lines are ignored; short rows and empty classes are
    bad rows; `propagated` rows are counted and left out. Raises LabelFileError when the file is
    not UTF-8 CSV.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            numbered = [(i + 1, row) for i, row in enumerate(csv.reader(f))]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelFileError(f"cannot read {path} as a UTF-8 CSV ({exc})") from exc
    out = LabelRead("csv")
    cols: dict[str, int | None] = {"item": 0, "class": 1}
    for line_no, row in numbered:
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if line_no == 1 and cells[0].lower() in (*ITEM_COLUMNS, LEGACY_ITEM_COLUMN):
            cols = _columns([c.lower() for c in cells])
            continue
        where = f"line {line_no}"
        cell = _cells_by_role(cells, cols)
        if len(cells) <= max(cols["item"], cols["class"]):
            out.bad.append((where, "needs two columns: item (id or path), class"))
        elif (cell("source") or "").lower() == MACHINE_SOURCE:
            out.propagated += 1
        elif not cell("class"):
            out.bad.append((where, "the class name is empty"))
        else:
            ident = item_number(cell("id")) if cols.get("id") is not None else None
            named = cell("path") if cols.get("path") is not None else None
            if ident is None and named is None:  # one item column: an id (digits) or a path
                item = cell("item") or ""
                ident, named = (int(item), None) if item.isdigit() else (None, item or None)
            out.entries.append(LabelEntry(where, cell("class") or "", ident, cell("sha256"), named,
                                          cell("annotator")))
    return out
