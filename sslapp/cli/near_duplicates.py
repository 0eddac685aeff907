"""`sslapp near-duplicates WORKSPACE [--keep-one] [--json]`: groups of near-identical items.

Finds copies that were resized, recompressed or slightly cropped (`sslapp.curate.duplicates`), with
the workspace's chosen embedding (features the cache lacks are computed in this process first).
Prints one line per group, largest first, or with --json a list of {items, paths}. --keep-one
keeps one item per group (a labelled one, else the lowest id) and skips the others in the
labelling queue; nothing is deleted.
"""

from __future__ import annotations

from sslapp.cli.common import (
    CLIError,
    count_items,
    emit,
    handle_errors,
    no_items_error,
    say,
    workspace_arg,
)
from sslapp.words import count


def register(sub) -> None:
    p = sub.add_parser("near-duplicates", help="groups of near-identical items (images resized, recompressed or cropped; texts nearly the same)",
                       description="Group near-identical items: images resized, recompressed or slightly cropped, texts with a few words changed.")
    p.add_argument("workspace")
    p.add_argument("--keep-one", action="store_true",
                   help="keep one item per group and skip the rest in the labelling queue")
    p.add_argument("--json", action="store_true", help="print a JSON list of {items, paths}")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    from sslapp.cli.similar import progress_to_stderr
    from sslapp.curate.duplicates import near_duplicate_groups
    from sslapp.curate.read import keep_one
    from sslapp.curate.similar import load_index

    ws = workspace_arg(args.workspace)
    if ws.store.count_items() == 0:
        raise no_items_error(ws)
    try:
        index = load_index(ws, progress=progress_to_stderr)
        groups = near_duplicate_groups(ws, index)
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(str(exc), 1) from exc
    extra = sum(len(g["items"]) - 1 for g in groups)
    say(f"{count(len(groups), 'group')} of near-duplicates ({count_items(ws, extra)} beyond one per group), "
        f"with the {index.name} embedding")
    if args.keep_one:
        skipped = sum(len(keep_one(ws, g["items"])["skipped"]) for g in groups)
        say(f"kept one item per group; {skipped} skipped in the labelling queue (labelling one brings it back)")
    text = "\n".join(f"{count_items(ws, len(g['items']))}: " + ", ".join(f"{i} {p}" for i, p in zip(g["items"], g["paths"], strict=True))
                     for g in groups)
    emit(groups, args.json, text or "no near-duplicates")
    return 0
