"""`sslapp label WORKSPACE --csv FILE [--no-new-classes] [--json]`: import labels from a CSV.

Each row is `item,class` where item is an item id or its source path (as shown by `sslapp labels
--export`). A header row is allowed. Bad rows are reported on stderr with their line numbers;
the good rows are kept. Labels are stored with source "imported", one undoable action per class.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sslapp.cli.common import CLIError, emit, handle_errors, say, workspace_arg

ITEM_COLUMNS = ("item_id", "item", "id", "source_path", "path", "source", "file", "item_source")
CLASS_COLUMNS = ("class", "label", "class_name")


def register(sub) -> None:
    p = sub.add_parser("label", help="import labels from a CSV of item (id or path), class")
    p.add_argument("workspace")
    p.add_argument("--csv", required=True, metavar="FILE", help="rows: item id or source path, class name")
    p.add_argument("--no-new-classes", action="store_true",
                   help="reject rows whose class does not exist yet instead of creating it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def parse_rows(ws, lines: list[list[str]], allow_new: bool) -> tuple[dict[str, list[int]], list[dict]]:
    """Resolve rows to {class name: [item ids]}; returns it with the bad rows (line, row, reason)."""
    store = ws.store
    known = {c["name"] for c in store.classes()}
    by_class: dict[str, list[int]] = {}
    bad: list[dict] = []
    item_col, class_col = 0, 1
    for line_no, row in lines:
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if line_no == 1 and cells[0].lower() in ITEM_COLUMNS:  # a header: find the columns by name
            names = [c.lower() for c in cells]
            item_col = next(names.index(c) for c in ITEM_COLUMNS if c in names)
            class_col = next((names.index(c) for c in CLASS_COLUMNS if c in names), 1)
            continue
        if len(cells) <= max(item_col, class_col):
            bad.append({"line": line_no, "row": row, "reason": "needs two columns: item (id or path), class"})
            continue
        item, name = cells[item_col], cells[class_col]
        if not name:
            bad.append({"line": line_no, "row": row, "reason": "the class name is empty"})
            continue
        if name not in known and not allow_new:
            bad.append({"line": line_no, "row": row,
                        "reason": f"unknown class {name!r} (known: {', '.join(sorted(known)) or 'none'}); "
                                  "drop --no-new-classes to create it"})
            continue
        item_id = None
        if item.isdigit() and store.item(int(item)) is not None:
            item_id = int(item)
        else:
            found = store.find_items_by_source(item)
            if len(found) > 1:
                bad.append({"line": line_no, "row": row,
                            "reason": f"{item!r} matches {len(found)} items; use the item id instead"})
                continue
            item_id = found[0] if found else None
        if item_id is None:
            bad.append({"line": line_no, "row": row, "reason": f"no item with id or source path {item!r}"})
            continue
        known.add(name)
        by_class.setdefault(name, []).append(item_id)
    return by_class, bad


@handle_errors
def run(args) -> int:
    ws = workspace_arg(args.workspace)
    path = Path(args.csv)
    if not path.is_file():
        raise CLIError(f"{path} is not a file; give a CSV with rows `item,class`", 2)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            lines = [(i + 1, row) for i, row in enumerate(csv.reader(f))]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"cannot read {path} as a UTF-8 CSV ({exc})", 2) from exc
    by_class, bad = parse_rows(ws, lines, allow_new=not args.no_new_classes)
    labelled = 0
    for name, ids in by_class.items():
        labelled += ws.store.set_labels(ids, ws.store.class_id(name, create=True), source="imported",
                                        action="import")
    for b in bad:
        say(f"{path}:{b['line']}: {b['reason']} (row: {','.join(b['row'])})")
    summary = {"labelled": labelled, "classes": {k: len(v) for k, v in by_class.items()},
               "bad_rows": [{"line": b["line"], "reason": b["reason"]} for b in bad]}
    emit(summary, args.json, f"labelled {labelled} item(s) in {len(by_class)} class(es); {len(bad)} bad row(s)")
    if labelled == 0 and bad:
        return 1
    return 0
