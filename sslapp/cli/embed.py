"""`sslapp embed WORKSPACE [--clusters kmeans|hdbscan] [--k K] [--use ENCODER|auto] [--provisional] [--json]`.

Embeds every item with the workspace's chosen embedding (`sslapp.features.service`), lays out the
map and clusters it. `--use` pins an encoder artifact (see `sslapp info`) or goes back to `auto`.
"""

from __future__ import annotations

from sslapp.cli.common import CLIError, count_items, emit, handle_errors, no_items_error, say, workspace_arg
from sslapp.words import count


def register(sub) -> None:
    p = sub.add_parser("embed", help="embed every item with the chosen encoder, lay out the map, cluster it")
    p.add_argument("workspace")
    p.add_argument("--clusters", choices=["kmeans", "hdbscan"], default="kmeans",
                   help="k-means on the map (k read off the kNN graph unless --k) or HDBSCAN on the map")
    p.add_argument("--k", type=int, default=None, help="number of k-means clusters (default: automatic)")
    p.add_argument("--provisional", action="store_true",
                   help="only the quick pixel map (seconds), not the chosen embedding's")
    p.add_argument("--use", metavar="ENCODER|auto",
                   help="pin the encoder artifact every step uses (map, suggestions, classifier), or 'auto' to "
                        "let the app choose by measurement again")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    from sslapp.cli.common import run_job_in_foreground

    if args.k is not None and not 1 <= args.k <= 200:
        raise CLIError(f"--k must be between 1 and 200, not {args.k}", 2)
    ws = workspace_arg(args.workspace)
    if ws.store.count_items() == 0:
        raise no_items_error(ws)
    if args.use is not None:
        from sslapp.features.read import PINNED_SETTING

        if args.use == "auto":
            ws.store.set_setting(PINNED_SETTING, None)
        else:
            ids = {a["id"] for a in ws.store.artifacts("encoder", limit=100_000)}
            if not args.use.isdigit() or int(args.use) not in ids:
                raise CLIError(f"--use {args.use!r}: no encoder artifact with that id; `sslapp info {ws.root}` lists "
                               "them, or use 'auto'", 2)
            ws.store.set_setting(PINNED_SETTING, int(args.use))
    params = {"clusters": args.clusters, "k": args.k, "provisional": args.provisional}
    say(f"embedding {count_items(ws, ws.store.count_items())} in {ws.root}")
    job = run_job_in_foreground(ws, "embed", params)
    if job.get("status") != "done":
        raise CLIError(f"embed job {job.get('id')} {job.get('status')}: {job.get('error') or ''}".strip(), 1)
    r = job["result"]
    text = (f"map {r['map_artifact_id']}: {count_items(ws, r['n_items'])}, {count(r['k'], 'cluster')} ({r['method']}), "
            f"embedding: {r.get('embedding_name')}{'' if r['provisional'] else ' (' + r.get('embedding_reason', '') + ')'}, "
            f"{r['seconds']} s")
    emit({"job": job["id"], **r}, args.json, text)
    return 0
