"""`sslapp models add WORKSPACE FOLDER [--name NAME] [--use] [--json]`: bring your own text model.

FOLDER is a sentence-transformers folder (modules.json, 1_Pooling/config.json, optional Normalize) or a
Hugging Face one (config.json, model.safetensors, tokenizer.json). Only safetensors weights are read; the
folder's three files are copied into the workspace with their sha256, which every later load checks. The
model becomes one more candidate embedding: the next `sslapp embed` embeds with it and the app measures
it against the others on your labels (`--use` pins it instead). Texts only; nothing is downloaded.
JSON: {"job", "encoder_artifact_id", "name", "dim", "pooling", "normalize", "layout", "max_tokens", ...}.
Exit 2: refused before anything was copied (the workspace, the folder); 1: refused or failed while loading.
"""

from __future__ import annotations

from pathlib import Path

from sslapp.cli.common import CLIError, emit, handle_errors, say, workspace_arg


def register(sub) -> None:
    p = sub.add_parser("models", help="add your own text model (a sentence-transformers or Hugging Face folder)")
    verbs = p.add_subparsers(dest="verb", metavar="add", required=True)
    add = verbs.add_parser("add", help="add a local model folder as one more candidate embedding of a text "
                           "workspace (safetensors only; copied into the workspace)")
    add.add_argument("workspace")
    add.add_argument("folder", help="the model folder: model.safetensors, config.json and tokenizer.json, at its "
                     "root or where modules.json puts its Transformer")
    add.add_argument("--name", help="the model's name in the app (default: the folder's name); adding a name again "
                     "replaces that model")
    add.add_argument("--use", action="store_true", help="pin it: map, suggestions and classifier use it "
                     "(default: the app measures it against the other candidates)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=run_add)


@handle_errors
def run_add(args) -> int:
    from sslapp.cli.common import run_job_in_foreground
    from sslapp.features.local_model import LocalModelError, local_model_refusal
    from sslapp.models.text.local_files import check_folder

    ws = workspace_arg(args.workspace)
    try:  # what can be refused without torch is refused before a job is queued
        refusal = local_model_refusal(ws)
        if refusal:
            raise LocalModelError(refusal)
        check_folder(args.folder)
    except LocalModelError as exc:
        raise CLIError(f"{str(exc).rstrip('.')}. Nothing was added.", 2) from None
    say(f"adding the model in {args.folder} to {ws.root}")
    folder = str(Path(args.folder).expanduser().resolve())  # the job may run where the cwd differs
    job = run_job_in_foreground(ws, "add_model", {"folder": folder, "name": args.name, "use": args.use})
    if job.get("status") != "done":
        error = (job.get("error") or "").rstrip(".")
        raise CLIError(f"{error or 'add_model job ' + str(job.get('status'))}. Nothing was added.", 1)
    r = job["result"]
    for note in r["notes"]:
        say(f"  {note}")
    say(f"copied {r['bytes'] / 1e6:.1f} MB into {r['copy']}; its sha256 is checked before every load")
    if r["pinned"]:
        say(f"pinned: the map, suggestions and classifier use it (`sslapp embed {ws.root} --use auto` to undo)")
    else:
        say(f"`sslapp embed {ws.root}` embeds with it and measures it against the other embeddings on your labels; "
            f"pin it with `sslapp embed {ws.root} --use {r['encoder_artifact_id']}`")
    emit({"job": job["id"], **r}, args.json,
         f"encoder {r['encoder_artifact_id']}: your model '{r['name']}' ({r['model_type']}, {r['dim']}-d, "
         f"{r['pooling']} pooling{', normalised' if r['normalize'] else ''})")
    return 0
