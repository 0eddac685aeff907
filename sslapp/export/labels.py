"""The one label file schema: its columns, the rows of a workspace, the writer and the reader.

`sslapp export` (labels.csv / labels.json in the export folder), `sslapp labels --export` and
`sslapp label --csv` all use this module, so a file one of them writes the others read.

Sources: `user` (labelled in the app or CLI), `imported` (folder names at ingestion, or a CSV),
`propagated` (a machine guess: a label stored as propagated, or, in an export, a confident
prediction of the exported classifier for an unlabelled item, with its confidence). The reader
never imports `propagated` rows: a guess read back in would become a person's label.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sslapp.atomic import atomic_path
from sslapp.workspace import Workspace

FIELDS = ("item_id", "path", "class", "source", "confidence", "original", "sha256")
DEFAULT_PROPAGATE_THRESHOLD = 0.9
HUMAN_SOURCES = ("user", "imported")
MACHINE_SOURCE = "propagated"
# Header names the reader accepts besides FIELDS: older sslapp files and hand-written ones.
ITEM_COLUMNS = ("item_id", "item", "id", "path", "source_path", "file", "item_source")
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
        r["item_id"]: {"item_id": r["item_id"], "class": r["class_name"], "source": r["source"], "confidence": None}
        for r in store.labels()}
    if predictions_run_id is not None and threshold is not None:
        unlabelled = set(store.unlabeled_ids(include_skipped=True))
        for p in store.predictions(predictions_run_id):
            if p["item_id"] in unlabelled and p["confidence"] >= threshold:
                rows[p["item_id"]] = {"item_id": p["item_id"], "class": p["class_name"], "source": MACHINE_SOURCE,
                                      "confidence": round(float(p["confidence"]), 6)}
    items = {it["id"]: it for it in store.items(ids=sorted(rows))}
    return [{k: v[k] for k in FIELDS} for v in (
        {**rows[i], "path": items[i]["source"], "original": items[i].get("original"), "sha256": items[i]["sha256"]}
        for i in sorted(rows) if i in items)]  # an item removed since has no row


def write_label_file(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Write `rows` as CSV or JSON (by the suffix), atomically: the old file or the new one, never half."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ValueError(f"{path}: a label file must end in .csv or .json")
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        if suffix == ".json":
            f.write(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows({k: "" if r[k] is None else r[k] for k in FIELDS} for r in rows)


def write_labels(rows: list[dict[str, Any]], folder: Path) -> dict[str, str]:
    """labels.csv and labels.json in `folder`; returns {file name: what it is}."""
    write_label_file(rows, folder / "labels.csv")
    write_label_file(rows, folder / "labels.json")
    return {"labels.csv": "labels as CSV", "labels.json": "labels as JSON"}


class LabelFileError(ValueError):
    """A label file that cannot be read at all (not UTF-8, not CSV)."""


@dataclass
class LabelLine:
    line: int
    item: str  # an item id or a source path
    class_name: str
    row: list[str]


@dataclass
class LabelCSV:
    """What `read_label_csv` found: usable lines, bad ones (line, row, reason), machine guesses left out."""

    lines: list[LabelLine] = field(default_factory=list)
    bad: list[dict[str, Any]] = field(default_factory=list)
    propagated: int = 0


def _columns(names: list[str]) -> tuple[int, int, int | None]:
    """(item, class, label source) column indices from a header row."""
    item = next((names.index(c) for c in ITEM_COLUMNS if c in names), None)
    if item is None:
        item = names.index(LEGACY_ITEM_COLUMN)
    source = next((names.index(c) for c in LABEL_SOURCE_COLUMNS if c in names and names.index(c) != item), None)
    klass = next((names.index(c) for c in CLASS_COLUMNS if c in names), 1)
    return item, klass, source


def read_label_csv(path: str | os.PathLike) -> LabelCSV:
    """Rows `item,class` (item: id or source path), with or without a header; an export's labels.csv too.

    A header is recognised by its first cell (`item_id`, `path`, ...); then columns are found by
    name. Blank lines are ignored; short rows and empty classes are bad rows; `propagated` rows
    are counted and left out. Raises LabelFileError when the file is not UTF-8 CSV.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            numbered = [(i + 1, row) for i, row in enumerate(csv.reader(f))]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelFileError(f"cannot read {path} as a UTF-8 CSV ({exc})") from exc
    out = LabelCSV()
    item_col, class_col, source_col = 0, 1, None
    for line_no, row in numbered:
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if line_no == 1 and cells[0].lower() in (*ITEM_COLUMNS, LEGACY_ITEM_COLUMN):
            item_col, class_col, source_col = _columns([c.lower() for c in cells])
            continue
        if len(cells) <= max(item_col, class_col):
            out.bad.append({"line": line_no, "row": row, "reason": "needs two columns: item (id or path), class"})
            continue
        if source_col is not None and source_col < len(cells) and cells[source_col].lower() == MACHINE_SOURCE:
            out.propagated += 1
            continue
        if not cells[class_col]:
            out.bad.append({"line": line_no, "row": row, "reason": "the class name is empty"})
            continue
        out.lines.append(LabelLine(line_no, cells[item_col], cells[class_col], row))
    return out
