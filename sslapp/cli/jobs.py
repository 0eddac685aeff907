"""`sslapp jobs WORKSPACE [list|cancel|pause|resume|log] [ID]`: look at and steer jobs."""

from __future__ import annotations

from sslapp.cli.common import CLIError, emit, handle_errors, workspace_arg


def register(sub) -> None:
    p = sub.add_parser("jobs", help="list, cancel, pause or resume jobs")
    p.add_argument("workspace")
    p.add_argument("action", nargs="?", default="list", choices=["list", "cancel", "pause", "resume", "log"])
    p.add_argument("job", nargs="?", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    from sslapp.jobs.worker import reap_dead_jobs

    ws = workspace_arg(args.workspace)
    reap_dead_jobs(ws)
    if args.action == "list":
        jobs = ws.store.jobs(limit=100)
        lines = [f"{j['id']:>5} {j['kind']:<10} {j['status']:<12} {j['progress']}" +
                 (f"  error: {j['error']}" if j["error"] else "") for j in jobs]
        emit(jobs, args.json, "\n".join(lines) or "no jobs")
        return 0
    if args.job is None:
        raise CLIError(f"`jobs {args.action}` needs a job id", 2)
    if args.action == "log":
        path = ws.job_log_path(args.job)
        if not path.exists():
            raise CLIError(f"job {args.job} has no log yet")
        print(path.read_text(encoding="utf-8", errors="replace"), end="")
        return 0
    ok = ws.store.resume_job(args.job) if args.action == "resume" else ws.store.request_job_stop(args.job, args.action)
    if not ok:
        raise CLIError(f"cannot {args.action} job {args.job} (status {ws.store.job_status(args.job)})")
    emit({"job": args.job, "status": ws.store.job_status(args.job)}, args.json,
         f"job {args.job}: {ws.store.job_status(args.job)}")
    return 0
