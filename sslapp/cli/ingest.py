"""`sslapp ingest WORKSPACE SOURCE... [--labels-from-dirs] [--text-column C] [--label-column C]
[--cache-size S] [--modality M] [--json]`.

Adds items (images; texts from .txt files or from a table's rows; sounds, one per window of a recording)
from files, folders (recursively)
and zip archives. Prints one reason per skipped file or row on stderr; exit 0 when anything was added
or everything was already there. A workspace holds one kind of item, fixed by its first ingest:
sources of another kind are refused (exit 1).
"""

from __future__ import annotations

from sslapp.cli.common import CLIError, emit, handle_errors, say


def register(sub) -> None:
    p = sub.add_parser("ingest", help="add items (images, texts or sounds: files, folders, zip archives) to a "
                       "workspace",
                       description="Add items to WORKSPACE (created if needed); a workspace holds one kind. "
                       "Images: PNG, JPEG, WebP, BMP, TIFF, GIF (first frame). Texts: .txt files (one text "
                       "each) or tables with one text per row: CSV, TSV, JSON Lines (.jsonl, .ndjson), "
                       "Parquet. Sounds: WAV, FLAC, OGG, MP3 (cut into 1.024 s windows). "
                       "Folders are read recursively; zip archives are read without extracting. "
                       "Duplicates (same bytes; texts: the same after whitespace is normalised) are "
                       "skipped.")
    p.add_argument("workspace")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="item files, folders or .zip archives")
    p.add_argument("--labels-from-dirs", action="store_true",
                   help="label each item with its parent folder's name (ImageFolder layout), marked imported")
    p.add_argument("--text-column", default=None, metavar="COL",
                   help="tables of texts: the column that holds the texts (default: the column of the "
                   "longest strings)")
    p.add_argument("--label-column", default=None, metavar="COL",
                   help="tables of texts: a column of labels, imported as labels (marked imported)")
    p.add_argument("--cache-size", type=int, default=None, metavar="S",
                   help="images: side in pixels of the training cache (16-512, default 64); fixed per "
                   "workspace (sounds: always their 64 x 64 log-mel picture)")
    p.add_argument("--modality", default=None, metavar="M",
                   help="the kind of item a new workspace holds: image, text or audio (default: the kind most "
                   "of its first files are)")
    p.add_argument("--workers", type=int, default=None, help="decode processes (default: one per core)")
    p.add_argument("--json", action="store_true", help='print {"added", "duplicates", "skipped"} as JSON')
    p.set_defaults(func=run)


def table_options(text_column: str | None, label_column: str | None) -> dict[str, str]:
    """The decoder options a user gave for tables of texts (only those given)."""
    return {k: v for k, v in (("text_column", text_column), ("label_column", label_column)) if v}


@handle_errors
def run(args) -> int:
    from sslapp.ingest.cache import CacheError
    from sslapp.ingest.ingest import ingest
    from sslapp.modalities import MODALITIES, ModalityError, workspace_modality
    from sslapp.workspace import WorkspaceError, open_workspace

    if args.modality is not None:
        try:
            MODALITIES.get_entry(args.modality)
        except ValueError as exc:
            raise CLIError(str(exc), 2) from exc
    try:
        ws = open_workspace(args.workspace, create=True, cache_size=args.cache_size)
    except WorkspaceError as exc:
        raise CLIError(str(exc), 2) from exc
    try:
        report = ingest(ws, args.sources, labels_from_dirs=args.labels_from_dirs, workers=args.workers,
                        modality=args.modality, options=table_options(args.text_column, args.label_column))
    except (CacheError, ModalityError) as exc:
        raise CLIError(str(exc), 1) from exc
    noun = workspace_modality(ws).plural
    rate = "img" if noun == "images" else noun
    if not args.json:
        for entry in report["skipped"]:
            say(f"skipped {entry['source']}: {entry['reason']}")
        for entry in report["notes"]:
            say(f"note {entry['source']}: {entry['note']}")
    text = (f"added {report['added']} {noun}, {report['duplicates']} duplicates, "
            f"{len(report['skipped'])} skipped" + (f", {report['labels']} imported labels" if report["labels"] else "")
            + f" ({report['images_per_s'] or 0:.0f} {rate}/s)")
    emit(report, args.json, text)
    if report["added"] == 0 and report["duplicates"] == 0:
        if not args.json:
            say(f"sslapp ingest: no usable {noun} found in " + ", ".join(args.sources))
        return 1
    return 0
