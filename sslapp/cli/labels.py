"""`sslapp labels WORKSPACE --export FILE [--format F] [--json]`: write the current labels out.

Formats: CSV (the columns of an export's labels.csv, `sslapp.export.labels.FIELDS`), sslapp's JSON
rows, a Label Studio export (`FILE.label-studio.json` or `--format label-studio`) and COCO-style
classification (`FILE.coco.json` or `--format coco`); each keeps the annotator of every label, and
`sslapp label` reads every one of them back.
"""

from __future__ import annotations

from pathlib import Path

from sslapp.cli.common import CLIError, emit, handle_errors, workspace_arg
from sslapp.words import count

FORMATS = ("csv", "json", "label-studio", "coco")


def register(sub) -> None:
    p = sub.add_parser("labels", help="export the current labels as CSV, JSON, Label Studio or COCO")
    p.add_argument("workspace")
    p.add_argument("--export", required=True, metavar="FILE",
                   help="FILE.csv, FILE.json, FILE.label-studio.json or FILE.coco.json")
    p.add_argument("--format", choices=FORMATS, default=None, help="the format (default: by the file's name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    from sslapp.export.labels import format_of, label_data_key, label_rows, write_label_file

    ws = workspace_arg(args.workspace)
    out = Path(args.export)
    if out.suffix.lower() not in (".csv", ".json"):
        raise CLIError(f"{out}: the export file must end in .csv or .json", 2)
    try:
        fmt = format_of(out, args.format)
    except ValueError as exc:
        raise CLIError(str(exc), 2) from exc
    if not out.parent.exists():
        raise CLIError(f"folder {out.parent} does not exist; create it first", 2)
    rows = label_rows(ws)  # the stored labels only: no predictions are added
    write_label_file(rows, out, fmt, [c["name"] for c in ws.store.classes()], label_data_key(ws))
    emit({"path": str(out), "labels": len(rows), "format": fmt}, args.json,
         f"wrote {count(len(rows), 'label')} to {out} ({fmt})")
    return 0
