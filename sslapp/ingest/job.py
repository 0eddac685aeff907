"""The `ingest` job: the app saves uploads under the workspace's tmp/ and the worker ingests them.

params: {"paths": [...], "labels_from_dirs": bool, "cleanup": bool, "base": str | None, "map_after": bool,
"text_column": str | None, "label_column": str | None, "modality": str | None} (the last three as
`sslapp ingest --text-column/--label-column/--modality`: tables of texts, the kind a new workspace holds).
With `map_after` (the app sets it), new images queue an "embed" job right away, so the map (a pixel
map in seconds, then the chosen embedding's) is being drawn before the user opens Explore.
With `cleanup`, the uploaded files are deleted once the job is done or cancelled (a paused or failed
job keeps them, so it can be resumed), and only paths inside the workspace's tmp/ folder: a job can
never delete a user's own folder. A cancelled ingest commits nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sslapp.ingest.ingest import ingest
from sslapp.jobs.context import JobContext, JobStopped
from sslapp.jobs.launcher import queue_map
from sslapp.words import count


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _cleanup(tmp_dir: Path, paths: list[str], base: str | None) -> None:
    """Delete uploaded files, but only below the workspace's tmp/ (never a user's own folder)."""
    for p in [*paths, *([base] if base else [])]:
        path = Path(p)
        if not _inside(path, tmp_dir) or path.resolve() == tmp_dir.resolve():
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def run_ingest_job(ctx: JobContext) -> dict[str, Any]:
    ws = ctx.workspace
    paths = [str(p) for p in ctx.params.get("paths", [])]
    if not paths:
        raise ValueError("The ingest job got no paths; upload files or name a folder.")
    ctx.progress(force=True, message=f"reading {count(len(paths), 'source')}")
    base = ctx.params.get("base")
    options = {k: str(ctx.params[k]) for k in ("text_column", "label_column") if ctx.params.get(k)}
    try:
        report = ingest(ws, paths, labels_from_dirs=bool(ctx.params.get("labels_from_dirs")),
                        progress=lambda **v: ctx.progress(**v), should_stop=ctx.check_stop, base=base,
                        modality=ctx.params.get("modality") or None, options=options)
    except JobStopped as stop:
        if stop.how == "cancel" and ctx.params.get("cleanup"):
            _cleanup(ws.tmp_dir, paths, base)
        raise  # paused or failed jobs keep their uploads, so `resume` can run them again
    if ctx.params.get("cleanup"):
        _cleanup(ws.tmp_dir, paths, base)
    ctx.progress(force=True, message=f"added {report['added']}, {report['duplicates']} duplicates, "
                                     f"{len(report['skipped'])} skipped")
    ctx.log.info("ingest report: added %s, duplicates %s, skipped %s", report["added"], report["duplicates"],
                 len(report["skipped"]))
    for entry in report["skipped"]:
        ctx.log.info("skipped %s: %s", entry["source"], entry["reason"])
    if ctx.params.get("map_after") and report["added"]:
        report["map_job"] = queue_map(ws)
    return report
