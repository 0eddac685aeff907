"""`sslapp review WORKSPACE [--top N] [--seed S] [--json]`: labels that are likely wrong, most suspicious first.

Runs the "review" job in this process (features of the workspace's current embedding, out-of-fold
predictions, calibrated; see `sslapp.curate.label_issues`) and prints one line per label, or with
--json a list of {item, path, label, suggested, score, odds, flagged}: score in [0, 1], higher = more
likely wrong; suggested = the class the features favour, odds = how many times as likely as the
label; flagged = clearly contradicted (the only rows the app shows as possible errors). Notes go to
stderr (a class with too few labels to check is named there). Fails (exit 1) with what is missing
when there are too few labels to check.
"""

from __future__ import annotations

from sslapp.cli.common import CLIError, emit, handle_errors, run_job_in_foreground, say, workspace_arg
from sslapp.words import count


def register(sub) -> None:
    p = sub.add_parser("review", help="find labels that are likely wrong",
                       description="Rank your labels by how likely each one is wrong: every labelled image is "
                       "predicted by a model that did not see its label, and cleanlab scores how well the "
                       "label fits. Needs at least 2 labels in each of 2 classes.")
    p.add_argument("workspace")
    p.add_argument("--top", type=int, default=None, metavar="N", help="show only the N most suspicious labels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true",
                   help="print a JSON list of {item, path, label, suggested, score, odds, flagged}")
    p.set_defaults(func=run)


def _verdict(row: dict) -> str:
    """"label -> class" for a flagged row; otherwise the label fits, or the features are unsure."""
    from sslapp.curate.read import flagged

    if flagged(row):
        return f"{row['label']} -> {row['suggested']}"
    return f"{row['label']} (fits)" if row["suggested"] == row["label"] else f"{row['label']} (unsure: {row['suggested']}?)"


@handle_errors
def run(args) -> int:
    from sslapp.curate.read import label_problem

    if args.top is not None and args.top < 1:
        raise CLIError(f"--top must be at least 1 (got {args.top})", 2)
    ws = workspace_arg(args.workspace)
    problem = label_problem(ws)
    if problem:
        raise CLIError(problem)
    job = run_job_in_foreground(ws, "review", {"seed": args.seed})
    if job.get("status") != "done":
        raise CLIError(f"review job {job.get('id')} {job.get('status')}: {job.get('error') or 'no result'}")
    result = job["result"]
    n = result.get("n_flagged", 0)
    say(f"checked {count(result['n_labels'], 'label')} with {result['embedding']} ({result['route']}): "
        f"{n} may be wrong")
    for note in result["notes"]:
        say(f"note: {note}")
    rows = result["rows"][:args.top] if args.top else result["rows"]
    text = "\n".join(f"{r['score']:.2f}  {_verdict(r)}  {r['path']} (item {r['item']})" for r in rows)
    emit(rows, args.json, text or "no labels to show")
    return 0
