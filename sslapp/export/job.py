"""The "export" job: the app's Export button runs `export_workspace` in the worker, then zips it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sslapp.export.manifest import DEFAULT_FORMATS, ExportError, folder_listing
from sslapp.jobs.context import JobContext
from sslapp.workspace import Workspace, WorkspaceError, child_workspace


def export_target(ws: Workspace, name: str | None = None) -> Path:
    """A folder under the workspace's exports/ (named by time unless given); a name cannot leave exports/."""
    name = name or time.strftime("export-%Y%m%d-%H%M%S")
    try:
        return child_workspace(ws.exports_dir, name)
    except WorkspaceError as exc:
        raise ExportError(str(exc).replace("workspace name", "export name")) from None


def run_export_job(ctx: JobContext) -> dict[str, Any]:
    """params: name (folder under exports/), formats (default ONNX and safetensors), encoder_files, quantize
    (None, "fp16" or "int8"), imagefolder, encoder_only, overwrite, zip (default True)."""
    from sslapp.export.export import export_refusal_for, export_workspace, parse_formats, zip_export

    ws, p = ctx.workspace, ctx.params  # export_workspace refuses a classifier on imported vectors
    refusal = export_refusal_for(ws, parse_formats(p.get("formats") or DEFAULT_FORMATS), bool(p.get("imagefolder")),
                                 bool(p.get("encoder_only")), bool(p.get("encoder_files")), p.get("quantize") or None)
    if refusal:  # what this kind of item's export does not offer: before a run is recorded
        raise ExportError(refusal)
    out_dir = export_target(ws, p.get("name"))
    run_id = ws.store.create_run("export", p, job_id=ctx.job_id)

    def say(message: str) -> None:
        ctx.log.info(message)
        ctx.progress(force=True, message=message)

    try:
        manifest = export_workspace(ws, out_dir, formats=p.get("formats") or DEFAULT_FORMATS,
                                    imagefolder=bool(p.get("imagefolder")), overwrite=bool(p.get("overwrite")),
                                    encoder_only=bool(p.get("encoder_only")),
                                    encoder_files=bool(p.get("encoder_files")), quantize=p.get("quantize") or None,
                                    progress=say, check_stop=ctx.check_stop)
        zip_path = None
        if p.get("zip", True):
            say("zipping the export")
            zip_path = zip_export(out_dir)
    except BaseException:
        ws.store.update_run(run_id, status="failed")
        raise
    result = {"path": str(out_dir.relative_to(ws.root)), "zip": str(zip_path.relative_to(ws.root)) if zip_path else None,
              "kind": manifest["kind"], "classes": manifest["classes"], "formats": manifest["formats"],
              **folder_listing(out_dir), "quantized": manifest.get("quantized")}
    ws.store.add_artifact("export", result["path"], result, run_id=run_id)
    ws.store.update_run(run_id, status="done", summary=result)
    say(f"export ready: {result['path']}")
    return result
