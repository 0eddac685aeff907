"""`sslapp suggest WORKSPACE --budget K [--strategy NAME] [--seed S] [--json]`: the next items to label.

Runs the "suggest" job in this process and prints the batch: one line per item with its reason, or
with --json a list of {item_id, source, reason, strategy}. Notes (fallbacks, stale embeddings) go
to stderr.
"""

from __future__ import annotations

from sslapp.cli.common import CLIError, emit, handle_errors, run_job_in_foreground, say, workspace_arg

STRATEGY_NAMES = ["auto", "typiclust", "probcover", "margin", "entropy", "badge", "coreset", "random"]


def register(sub) -> None:
    p = sub.add_parser("suggest", help="which items to label next, and why",
                       description="Pick the next items to label. 'auto' picks typical items while labels "
                       "are scarce, then items the model is unsure about, spread over the data.")
    p.add_argument("workspace")
    p.add_argument("--budget", type=int, default=20, metavar="K", help="how many items to suggest (default 20)")
    p.add_argument("--strategy", default="auto", choices=STRATEGY_NAMES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print a JSON list of {item_id, source, reason, strategy}")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    if args.budget < 1:
        raise CLIError(f"--budget must be at least 1 (got {args.budget})", 2)
    ws = workspace_arg(args.workspace)
    job = run_job_in_foreground(ws, "suggest", {"budget": args.budget, "strategy": args.strategy,
                                                "seed": args.seed})
    if job.get("status") != "done":
        raise CLIError(f"suggest job {job.get('id')} {job.get('status')}: {job.get('error') or 'no result'}")
    result = job["result"]
    for note in result["notes"]:
        say(f"note: {note}")
    sources = {r["id"]: r["source"] for r in ws.store.items(ids=[s["item_id"] for s in result["suggestions"]])}
    rows = [{"item_id": s["item_id"], "source": sources.get(s["item_id"]), "reason": s["reason"],
             "strategy": s["strategy"]} for s in result["suggestions"]]
    text = "\n".join(f"{r['item_id']:>7}  {r['source']}  {r['reason']}" for r in rows)
    emit(rows, args.json, text or "nothing to suggest")
    return 0
