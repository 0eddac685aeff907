"""`sslapp export WORKSPACE OUT_DIR`: write the model (ONNX, TorchScript, safetensors), labels and a model card."""

from __future__ import annotations

import errno

from sslapp.cli.common import CLIError, emit, handle_errors, say, workspace_arg


def register(sub) -> None:
    p = sub.add_parser("export", help="export the fine-tuned model, its encoder and the labels to a folder")
    p.add_argument("workspace")
    p.add_argument("out_dir", help="folder to create (refused if it exists, unless --overwrite)")
    p.add_argument("--formats", default="onnx,torchscript,safetensors",
                   help="comma-separated model formats (default: onnx,torchscript,safetensors)")
    p.add_argument("--imagefolder", action="store_true",
                   help="also copy the labelled originals into imagefolder/<class>/")
    p.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it holds an earlier export")
    p.add_argument("--encoder-only", action="store_true",
                   help="export the pretrained encoder (feature extractor) without a classifier")
    p.add_argument("--zip", action="store_true", help="also write OUT_DIR.zip")
    p.add_argument("--json", action="store_true", help="print the manifest (model.json plus path) as JSON")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    from sslapp.export.export import NoClassifierError, export_workspace, zip_export
    from sslapp.export.manifest import ExportError

    ws = workspace_arg(args.workspace)
    try:
        manifest = export_workspace(ws, args.out_dir, formats=args.formats, imagefolder=args.imagefolder,
                                    overwrite=args.overwrite, encoder_only=args.encoder_only,
                                    progress=None if args.json else say)
        if args.zip:
            manifest["zip"] = str(zip_export(manifest["path"]))
    except NoClassifierError as exc:
        raise CLIError(str(exc), 3) from None
    except ExportError as exc:
        raise CLIError(str(exc), 2) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise CLIError(f"could not write the export ({exc.strerror}); nothing half-written was left "
                           f"behind. Free some disk space and export again.") from None
        raise CLIError(f"could not write the export: {exc}") from None
    ws.store.add_artifact("export", manifest["path"], {"kind": manifest["kind"], "formats": manifest["formats"],
                                                       "classes": manifest["classes"]})
    acc = manifest.get("estimated_accuracy") or {}
    text = [f"exported {manifest['kind']} to {manifest['path']}"]
    if manifest["classes"]:
        text.append(f"classes: {', '.join(manifest['classes'])}")
    if acc.get("mean") is not None:
        text.append(f"estimated accuracy: {100 * acc['mean']:.1f}% ± {100 * (acc.get('std') or 0):.1f}%")
    text.append("files: " + ", ".join(sorted(manifest["files"])))
    emit(manifest, args.json, "\n".join(text))
    return 0
