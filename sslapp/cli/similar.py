"""`sslapp similar WORKSPACE ITEM [--k 20] [--json]`: the items most like one item.

ITEM is an item id or its source as ingested ('cats/1.png', or 'tickets.csv:12' for a row of a table). Neighbours come from the
workspace's chosen embedding (`sslapp.features.service`); features the cache lacks are computed in
this process first. Prints one line per item, nearest first, or with --json a list of
{item, path, distance} (cosine distance, 0 = same direction).
"""

from __future__ import annotations

from sslapp.cli.common import (
    CLIError,
    count_items,
    emit,
    handle_errors,
    no_items_error,
    plural,
    say,
    workspace_arg,
)

MAX_K = 10_000


def register(sub) -> None:
    p = sub.add_parser("similar", help="the items most like one item (more like this)",
                       description="List the items nearest to ITEM in the workspace's chosen embedding.")
    p.add_argument("workspace")
    p.add_argument("item", help="item id or source path as ingested")
    p.add_argument("--k", type=int, default=20, help="how many items (default 20)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {item, path, distance}")
    p.set_defaults(func=run)


def progress_to_stderr(**values) -> None:
    if values.get("message"):
        say(values["message"])


@handle_errors
def run(args) -> int:
    from sslapp.curate.similar import ItemError, load_index, resolve_item, similar_items

    if not 1 <= args.k <= MAX_K:
        raise CLIError(f"--k must be between 1 and {MAX_K} (got {args.k})", 2)
    ws = workspace_arg(args.workspace)
    if ws.store.count_items() == 0:
        raise no_items_error(ws)
    try:
        item_id = resolve_item(ws, args.item)  # before any embedding work, so a typo fails at once
        index = load_index(ws, progress=progress_to_stderr)
        rows = similar_items(ws, item_id, args.k, index)
    except ItemError as exc:
        raise CLIError(str(exc), 2) from exc
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(str(exc), 1) from exc
    say(f"{count_items(ws, len(rows))} nearest to item {item_id} in the {index.name} embedding")
    text = "\n".join(f"{r['item']:>7}  {r['distance']:.4f}  {r['path']}" for r in rows)
    emit(rows, args.json, text or f"no other {plural(ws)}")
    return 0
