"""`sslapp label WORKSPACE FILE [--format F] [--annotator NAME] [--no-new-classes] [--json]`: import labels.

FILE is a CSV (`item,class`, item an id or a source path; a header is allowed, so the files
`sslapp labels --export` and `sslapp export` write read back as they are), sslapp's labels.json, a
Label Studio export (the latest annotation's `choices` per task) or a COCO-style classification
file; `--csv FILE` is the older spelling. Machine guesses (`propagated` rows, Label Studio
predictions) are left out. All or nothing: any bad entry is reported on stderr with where it is
(line, task, annotation) and nothing is stored (exit 1). Labels are stored with source "imported",
one undoable action, with the annotator the file names, else `--annotator` (default: the OS user).
"""

from __future__ import annotations

import getpass
from pathlib import Path

from sslapp.cli.common import CLIError, emit, handle_errors, say, workspace_arg
from sslapp.words import count

FORMATS = ("auto", "csv", "json", "label-studio", "coco")


def register(sub) -> None:
    p = sub.add_parser("label", help="import labels from a CSV, JSON, Label Studio or COCO file")
    p.add_argument("workspace")
    p.add_argument("file", nargs="?", help="the label file (.csv or .json)")
    p.add_argument("--csv", metavar="FILE", help="the label file (older spelling of FILE)")
    p.add_argument("--format", choices=FORMATS, default="auto",
                   help="auto (default): CSV by the name; Label Studio, COCO or sslapp JSON by the content")
    p.add_argument("--annotator", metavar="NAME", default=None,
                   help="who gave the labels the file names no annotator for (default: the OS user)")
    p.add_argument("--no-new-classes", action="store_true",
                   help="refuse the file if it names a class that does not exist yet instead of creating it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def default_annotator() -> str | None:
    """The OS user's name, or None where the system has none to give."""
    try:
        return getpass.getuser() or None
    except (KeyError, OSError):
        return None


@handle_errors
def run(args) -> int:
    from sslapp.export.label_formats import LabelFileError
    from sslapp.export.label_import import LabelImportError, import_label_file

    if bool(args.file) == bool(args.csv):
        raise CLIError("give one label file: `sslapp label WORKSPACE FILE` (or --csv FILE)", 2)
    path = Path(args.file or args.csv)
    ws = workspace_arg(args.workspace)
    if not path.is_file():
        raise CLIError(f"{path} is not a file; give a label file (.csv or .json)", 2)
    annotator = (args.annotator.strip() or None) if args.annotator is not None else default_annotator()
    try:
        done = import_label_file(ws, path, "csv" if args.csv and args.format == "auto" else args.format,
                                 allow_new=not args.no_new_classes, annotator=annotator)
    except LabelFileError as exc:
        raise CLIError(str(exc), 2) from exc
    except LabelImportError as exc:
        say(str(exc))
        emit({"labelled": 0, "problems": [{"where": w, "reason": r} for w, r in exc.problems]}, args.json)
        return 1
    if done.propagated:
        say(f"{path}: left out {count(done.propagated, 'machine guess')} (`propagated` rows "
            "or predictions), not labels")
    if done.unlabelled:
        say(f"{path}: left out {count(done.unlabelled, 'task')} without an annotation")
    emit(done.summary(), args.json, f"labelled {count(done.labelled, 'item')} in "
         f"{count(len(done.classes), 'class')} from {done.format}")
    return 0
