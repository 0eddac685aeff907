"""`sslapp label WORKSPACE --csv FILE [--no-new-classes] [--json]`: import labels from a CSV.

Each row is `item,class` where item is an item id or its source path. A header row is allowed,
so the files `sslapp labels --export` and `sslapp export` write read back as they are (the one
schema: `sslapp.export.labels`); their `propagated` rows are machine guesses and are left out.
Bad rows are reported on stderr with their line numbers; the good rows are kept. Labels are
stored with source "imported", one undoable action per class.
"""

from __future__ import annotations

from pathlib import Path

from sslapp.cli.common import CLIError, emit, handle_errors, say, workspace_arg


def register(sub) -> None:
    p = sub.add_parser("label", help="import labels from a CSV of item (id or path), class")
    p.add_argument("workspace")
    p.add_argument("--csv", required=True, metavar="FILE", help="rows: item id or source path, class name")
    p.add_argument("--no-new-classes", action="store_true",
                   help="reject rows whose class does not exist yet instead of creating it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def resolve(ws, lines, allow_new: bool) -> tuple[dict[str, list[int]], list[dict]]:
    """Resolve read lines to {class name: [item ids]}; returns it with the bad rows (line, row, reason)."""
    store = ws.store
    known = {c["name"] for c in store.classes()}
    by_class: dict[str, list[int]] = {}
    bad: list[dict] = []
    for line in lines:
        item, name = line.item, line.class_name
        if name not in known and not allow_new:
            bad.append({"line": line.line, "row": line.row,
                        "reason": f"unknown class {name!r} (known: {', '.join(sorted(known)) or 'none'}); "
                                  "drop --no-new-classes to create it"})
            continue
        item_id = None
        if item.isdigit() and store.item(int(item)) is not None:
            item_id = int(item)
        else:
            found = store.find_items_by_source(item)
            if len(found) > 1:
                bad.append({"line": line.line, "row": line.row,
                            "reason": f"{item!r} matches {len(found)} items; use the item id instead"})
                continue
            item_id = found[0] if found else None
        if item_id is None:
            bad.append({"line": line.line, "row": line.row, "reason": f"no item with id or source path {item!r}"})
            continue
        known.add(name)
        by_class.setdefault(name, []).append(item_id)
    return by_class, bad


@handle_errors
def run(args) -> int:
    from sslapp.export.labels import LabelFileError, read_label_csv

    ws = workspace_arg(args.workspace)
    path = Path(args.csv)
    if not path.is_file():
        raise CLIError(f"{path} is not a file; give a CSV with rows `item,class`", 2)
    try:
        read = read_label_csv(path)
    except LabelFileError as exc:
        raise CLIError(str(exc), 2) from exc
    by_class, bad = resolve(ws, read.lines, allow_new=not args.no_new_classes)
    bad = sorted(read.bad + bad, key=lambda b: b["line"])
    labelled = 0
    for name, ids in by_class.items():
        labelled += ws.store.set_labels(ids, ws.store.class_id(name, create=True), source="imported",
                                        action="import")
    for b in bad:
        say(f"{path}:{b['line']}: {b['reason']} (row: {','.join(b['row'])})")
    if read.propagated:
        say(f"{path}: left out {read.propagated} row(s) with source 'propagated' (machine guesses, not labels)")
    summary = {"labelled": labelled, "classes": {k: len(v) for k, v in by_class.items()},
               "bad_rows": [{"line": b["line"], "reason": b["reason"]} for b in bad],
               "propagated_left_out": read.propagated}
    emit(summary, args.json, f"labelled {labelled} item(s) in {len(by_class)} class(es); {len(bad)} bad row(s)")
    if labelled == 0 and bad:
        return 1
    return 0
