"""`sslapp predict EXPORT_DIR IMAGES_OR_DIRS...`: classify images with an export's ONNX model (no torch)."""

from __future__ import annotations

from sslapp.cli.common import CLIError, emit, handle_errors, say


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify images with an exported model (onnxruntime, no torch)")
    p.add_argument("export_dir", help="a folder written by `sslapp export`")
    p.add_argument("paths", nargs="+", metavar="IMAGES_OR_DIRS", help="image files, folders or zip archives")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to list per image (default 3)")
    p.add_argument("--model", default=None, metavar="fp32|int8|fp16|FILE",
                   help="which ONNX classifier of the export to run: fp32 (classifier.onnx), a quantized copy "
                        "(int8, fp16) or a file name; default: classifier.onnx, or the quantized one if the "
                        "export has only that")
    p.add_argument("--json", action="store_true",
                   help='print [{"path", "class", "confidence", "top_k": [[class, p], ...]}]')
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    from sslapp.export.manifest import ExportError
    from sslapp.export.predict import predict

    if args.top_k < 1:
        raise CLIError("--top-k must be at least 1", 2)
    errors: list[dict[str, str]] = []
    try:
        results = predict(args.export_dir, args.paths, top_k=args.top_k, errors=errors, model=args.model)
    except ExportError as exc:
        raise CLIError(str(exc), 2) from None
    for e in errors:
        say(f"skipped {e['path']}: {e['reason']}")
    emit(results, args.json, "\n".join(f"{r['path']}\t{r['class']}\t{r['confidence']:.4f}" for r in results))
    if errors:
        say(f"{len(results)} image(s) classified, {len(errors)} file(s) skipped")
    if not results:
        raise CLIError("no image could be classified", 1)
    return 0
