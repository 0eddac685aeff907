"""`sslapp info WORKSPACE [--json]`: counts of items, labels per class, jobs and latest runs."""

from __future__ import annotations

from sslapp.cli.common import emit, handle_errors, workspace_arg


def register(sub) -> None:
    p = sub.add_parser("info", help="what a workspace holds")
    p.add_argument("workspace")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    ws = workspace_arg(args.workspace)
    info = {"workspace": str(ws.root), "cache_size": ws.cache_size, **ws.store.info()}
    lines = [f"workspace {info['workspace']}", f"items     {info['items']}", f"labels    {info['labels']}"]
    lines += [f"  {name}: {n}" for name, n in info["labels_per_class"].items()]
    lines.append("jobs      " + (", ".join(f"{k}: {v}" for k, v in info["jobs"].items()) or "none"))
    lines += [f"run {r['id']} {r['kind']} {r['status']}" for r in info["latest_runs"]]
    emit(info, args.json, "\n".join(lines))
    return 0
