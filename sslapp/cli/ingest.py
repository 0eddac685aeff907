"""`sslapp ingest WORKSPACE SOURCE... [--labels-from-dirs] [--cache-size S] [--modality M] [--json]`.

Adds items from files, folders (recursively) and zip archives. Prints one reason per skipped
file on stderr; exit 0 when anything was added or everything was already there. A workspace holds
one kind of item, fixed by its first ingest: sources of another kind are refused (exit 1).
"""

from __future__ import annotations

from sslapp.cli.common import CLIError, emit, handle_errors, say


def register(sub) -> None:
    p = sub.add_parser("ingest", help="add images (files, folders, zip archives) to a workspace",
                       description="Add images to WORKSPACE (created if needed). Formats: PNG, JPEG, WebP, "
                       "BMP, TIFF, GIF (first frame); folders are read recursively; zip archives are read "
                       "without extracting. Duplicates (same bytes) are skipped.")
    p.add_argument("workspace")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="image files, folders or .zip archives")
    p.add_argument("--labels-from-dirs", action="store_true",
                   help="label each image with its parent folder's name (ImageFolder layout), marked imported")
    p.add_argument("--cache-size", type=int, default=None, metavar="S",
                   help="side in pixels of the training cache (16-512, default 64); fixed per workspace")
    p.add_argument("--modality", default=None, metavar="M",
                   help="the kind of item a new workspace holds (default: the kind of its first file)")
    p.add_argument("--workers", type=int, default=None, help="decode processes (default: one per core)")
    p.add_argument("--json", action="store_true", help='print {"added", "duplicates", "skipped"} as JSON')
    p.set_defaults(func=run)


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
                        modality=args.modality)
    except (CacheError, ModalityError) as exc:
        raise CLIError(str(exc), 1) from exc
    noun = workspace_modality(ws).plural
    if not args.json:
        for entry in report["skipped"]:
            say(f"skipped {entry['source']}: {entry['reason']}")
        for entry in report["notes"]:
            say(f"note {entry['source']}: {entry['note']}")
    text = (f"added {report['added']} {noun}, {report['duplicates']} duplicates, "
            f"{len(report['skipped'])} skipped" + (f", {report['labels']} imported labels" if report["labels"] else "")
            + f" ({report['images_per_s'] or 0:.0f} img/s)")
    emit(report, args.json, text)
    if report["added"] == 0 and report["duplicates"] == 0:
        if not args.json:
            say(f"sslapp ingest: no usable {noun} found in " + ", ".join(args.sources))
        return 1
    return 0
