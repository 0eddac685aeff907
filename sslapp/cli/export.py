"""`sslapp export WORKSPACE OUT_DIR`: write the model, labels and a model card.

By default the ONNX classifier and its safetensors weights; `--formats`, `--encoder-files` and
`--all` add TorchScript and the encoder alone, `--quantize fp16|int8` a smaller ONNX classifier.
"""

from __future__ import annotations

import errno
from pathlib import Path

from sslapp.cli.common import CLIError, emit, handle_errors, say, workspace_arg
from sslapp.export.manifest import DEFAULT_FORMATS, FORMATS, QUANTIZE, folder_listing
from sslapp.words import count


def register(sub) -> None:
    p = sub.add_parser("export", help="export the fine-tuned model (ONNX and safetensors by default) and the "
                                      "labels to a folder")
    p.add_argument("workspace")
    p.add_argument("out_dir", help="folder to create (refused if it exists, unless --overwrite)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--formats", default=",".join(DEFAULT_FORMATS),
                       help=f"comma-separated model formats out of {','.join(FORMATS)} (default: "
                            f"{','.join(DEFAULT_FORMATS)}: the ONNX classifier, and its weights for PyTorch)")
    which.add_argument("--all", action="store_true",
                       help="every format, and the encoder alone too (--formats "
                            f"{','.join(FORMATS)} --encoder-files); several times the size. Texts: "
                            "ONNX and safetensors")
    p.add_argument("--encoder-files", action="store_true",
                   help="also write the encoder alone (a feature extractor) in each format; the classifier "
                        "files hold it already")
    p.add_argument("--quantize", choices=QUANTIZE, default=None,
                   help="also write a smaller ONNX classifier: fp16 (half the size, near-identical) or int8 "
                        "(a quarter, calibrated on workspace images); model.json records how well it agrees")
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
    from sslapp.modalities import get_modality, workspace_modality

    ws = workspace_arg(args.workspace)
    modality = workspace_modality(ws)  # --all: every format and part this kind of item's export offers
    every_part = args.all and "encoder" in modality.export_extras
    try:
        manifest = export_workspace(ws, args.out_dir, formats=modality.export_formats if args.all else args.formats,
                                    imagefolder=args.imagefolder, overwrite=args.overwrite,
                                    encoder_only=args.encoder_only, encoder_files=every_part or args.encoder_files,
                                    quantize=args.quantize, progress=None if args.json else say)
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
        interval = (f" (95% interval {100 * acc['low']:.0f}-{100 * acc['high']:.0f}%)"
                    if acc.get("low") is not None else "")
        balanced = ", class-balanced" if str(acc.get("measure", "")).startswith("class-balanced") else ""
        text.append(f"estimated accuracy: {100 * acc['mean']:.1f}%{interval}{balanced}"
                    + (f"; the labels are very unbalanced ({acc['imbalance']:.1f}x)" if acc.get("unbalanced") else ""))
    listing = folder_listing(Path(manifest["path"]))  # what the folder holds, model.json too
    text.append(f"{count(len(listing['files']), 'file')} ({listing['bytes'] / 1e6:.1f} MB in all): "
                + ", ".join(listing["files"])
                + "".join(f"; {name}/ with {count(n, 'file')}" for name, n in listing["folders"].items()))
    if q := manifest.get("quantized"):
        text.append(f"{q['file']}: same class as the full model on {100 * q['top1_agreement']:.1f}% of "
                    f"{count(q['n_images'], get_modality(manifest.get('modality', 'image')).noun)}, "
                    f"max probability difference {q['max_abs_prob_diff']:.4f}")
    emit({**manifest, "listing": listing}, args.json, "\n".join(text))
    return 0
