"""`sslapp worker WORKSPACE`: run queued jobs (the app starts one on demand)."""

from __future__ import annotations

import logging

from sslapp.cli.common import handle_errors, say, workspace_arg
from sslapp.words import count


def register(sub) -> None:
    p = sub.add_parser("worker", help="run queued jobs of a workspace in this process")
    p.add_argument("workspace")
    p.add_argument("--idle-exit", type=float, default=None, metavar="S",
                   help="exit after S seconds without a job (default: run until stopped)")
    p.add_argument("--max-jobs", type=int, default=None, help="exit after this many jobs")
    p.add_argument("--no-warm-up", action="store_true", help="skip compiling UMAP at start")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    from sslapp.jobs.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ws = workspace_arg(args.workspace, create=False)
    ran = run_worker(ws, idle_exit_s=args.idle_exit, max_jobs=args.max_jobs, warm_up=not args.no_warm_up)
    say(f"worker ran {count(ran, 'job')}")
    return 0
