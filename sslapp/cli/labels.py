"""`sslapp labels WORKSPACE --export FILE.csv|FILE.json [--json]`: write the current labels out.

The file has the columns of an export's labels.csv (`sslapp.export.labels.FIELDS`), and
`sslapp label --csv` reads it back.
"""

from __future__ import annotations

from pathlib import Path

from sslapp.cli.common import CLIError, emit, handle_errors, workspace_arg


def register(sub) -> None:
    p = sub.add_parser("labels", help="export the current labels as CSV or JSON")
    p.add_argument("workspace")
    p.add_argument("--export", required=True, metavar="FILE", help="FILE.csv or FILE.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    from sslapp.export.labels import label_rows, write_label_file

    ws = workspace_arg(args.workspace)
    out = Path(args.export)
    if out.suffix.lower() not in (".csv", ".json"):
        raise CLIError(f"{out}: the export file must end in .csv or .json", 2)
    if not out.parent.exists():
        raise CLIError(f"folder {out.parent} does not exist; create it first", 2)
    rows = label_rows(ws)  # the stored labels only: no predictions are added
    write_label_file(rows, out)
    emit({"path": str(out), "labels": len(rows)}, args.json, f"wrote {len(rows)} label(s) to {out}")
    return 0
