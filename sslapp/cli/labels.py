"""`sslapp labels WORKSPACE --export FILE.csv|FILE.json [--json]`: write the current labels out."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from sslapp.cli.common import CLIError, emit, handle_errors, workspace_arg

FIELDS = ("item_id", "source_path", "class", "label_source")


def register(sub) -> None:
    p = sub.add_parser("labels", help="export the current labels as CSV or JSON")
    p.add_argument("workspace")
    p.add_argument("--export", required=True, metavar="FILE", help="FILE.csv or FILE.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    ws = workspace_arg(args.workspace)
    out = Path(args.export)
    fmt = out.suffix.lower()
    if fmt not in (".csv", ".json"):
        raise CLIError(f"{out}: the export file must end in .csv or .json", 2)
    if not out.parent.exists():
        raise CLIError(f"folder {out.parent} does not exist; create it first", 2)
    rows = [{"item_id": r["item_id"], "source_path": r["item_source"], "class": r["class_name"],
             "label_source": r["source"]} for r in ws.store.labels()]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        if fmt == ".csv":
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        else:
            json.dump(rows, f, indent=1)
    tmp.replace(out)
    emit({"path": str(out), "labels": len(rows)}, args.json, f"wrote {len(rows)} label(s) to {out}")
    return 0
