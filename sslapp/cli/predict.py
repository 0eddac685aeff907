"""`sslapp predict EXPORT_DIR PATHS...`: classify images, texts or sounds with an export's ONNX model (no torch)."""

from __future__ import annotations

from sslapp.cli.common import CLIError, emit, handle_errors, say
from sslapp.cli.ingest import table_options
from sslapp.words import count


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify images, texts or sounds with an exported model (onnxruntime, no torch)",
                       description="Classify the items under PATHS with the export's ONNX classifier, reading "
                       "them as `sslapp ingest` does: images (files, folders, zips) for an image export; for a "
                       "text export .txt files (one text each) and tables with one text per row (CSV, TSV, JSON "
                       "Lines, Parquet), named FILE:ROW; for a sound export WAV, FLAC, OGG and MP3 files, each "
                       "1.024 s window of a longer recording named FILE:START (long.wav:12.288s). Bad files and "
                       "rows are reported on stderr one by one; exit 1 only when nothing could be classified.")
    p.add_argument("export_dir", help="a folder written by `sslapp export`")
    p.add_argument("paths", nargs="+", metavar="PATHS", help="item files (images, .txt files, tables of texts, sounds), "
                   "folders or zip archives")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to list per item (default 3)")
    p.add_argument("--model", default=None, metavar="fp32|int8|fp16|FILE",
                   help="which ONNX classifier of the export to run: fp32 (classifier.onnx), a quantized copy "
                        "(int8, fp16) or a file name; default: classifier.onnx, or the quantized one if the "
                        "export has only that")
    p.add_argument("--text-column", default=None, metavar="COL",
                   help="tables of texts: the column that holds the texts (default: the column of the "
                   "longest strings, as `sslapp ingest` picks it)")
    p.add_argument("--json", action="store_true",
                   help='print [{"path", "class", "confidence", "top_k": [[class, p], ...]}] in input order')
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    from sslapp.export.manifest import ExportError
    from sslapp.export.predict import open_predictor

    if args.top_k < 1:
        raise CLIError("--top-k must be at least 1", 2)
    errors: list[dict[str, str]] = []
    try:
        predictor = open_predictor(args.export_dir, model=args.model, options=table_options(args.text_column, None))
        results = predictor.predict(args.paths, top_k=args.top_k, errors=errors)
    except ExportError as exc:
        raise CLIError(str(exc), 2) from None
    for e in errors:
        say(f"skipped {e['path']}: {e['reason']}")
    emit(results, args.json, "\n".join(f"{r['path']}\t{r['class']}\t{r['confidence']:.4f}" for r in results))
    if errors:
        say(f"{count(len(results), predictor.noun, predictor.plural)} classified, {len(errors)} skipped")
    if not results:
        raise CLIError(f"no {predictor.noun} could be classified", 1)
    return 0
