"""`sslapp bench label-efficiency IMAGES_DIR --truth TRUTH.csv [--budgets 10,50,100] ...` and
`sslapp bench label-efficiency TEXTS.csv --text-column text --truth-column label ...`.

Simulates a user labelling suggested items and reports accuracy on every item never revealed, beside
random picks, the cheap baseline (raw pixels; TF-IDF) and a random forest on the same embeddings.
"""

from __future__ import annotations

import sys

from sslapp.cli.common import CLIError, emit, handle_errors, say
from sslapp.words import count


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks you can rerun on your own data")
    bench = p.add_subparsers(dest="bench", metavar="BENCHMARK")
    le = bench.add_parser("label-efficiency", help="accuracy against number of labels, simulated user",
                          description="Ingest SOURCE (a folder of images, or a table of texts: CSV, TSV, JSONL, "
                          "Parquet) into a workspace, pretrain for --pretrain-minutes, then simulate a user who "
                          "labels the suggested items (answers from TRUTH.csv: rows of 'relative image path,class "
                          "name'; for a table, from its --truth-column, which the app never sees). Reports accuracy "
                          "on all never-revealed items.")
    le.add_argument("images_dir", metavar="SOURCE")
    le.add_argument("--truth", default=None, metavar="TRUTH.csv", help="answers for a folder of images")
    le.add_argument("--text-column", default=None, metavar="COL",
                    help="a table's column of texts (default: its column of longest strings)")
    le.add_argument("--truth-column", default=None, metavar="COL", help="a table's column of answers")
    le.add_argument("--budgets", default="10,50,100", help="label budgets, comma-separated (default 10,50,100)")
    le.add_argument("--strategies", default="auto,random", help="comma-separated (default auto,random)")
    le.add_argument("--pretrain-minutes", type=float, default=10.0, metavar="M",
                    help="SSL pretraining time budget (default 10); 0 skips pretraining: the app then chooses "
                         "among its starting encoders (ImageNet, patch dictionary)")
    le.add_argument("--embeddings", default="app",
                    help="comma-separated rows to score: app (the app's own choice, as a user gets it), pixels, "
                         "patches, imagenet, ssl (pretrained from scratch), continued (SSL from ImageNet weights); "
                         "default app")
    le.add_argument("--method", help="SSL method to pretrain with (default: simclr for images, simcse for texts)")
    le.add_argument("--workspace", default=None, metavar="DIR",
                    help="keep the workspace here (default: a temporary folder, removed afterwards)")
    le.add_argument("--reuse-encoder", action="store_true",
                    help="with --workspace: use the encoder an earlier run left there instead of pretraining again")
    le.add_argument("--seed", type=int, default=0)
    le.add_argument("--random-seeds", type=int, default=3, help="seeds random picks are averaged over (default 3)")
    le.add_argument("--round", type=int, default=20, dest="round_size",
                    help="suggestions asked for per labelling round (default 20)")
    le.add_argument("--cache-size", type=int, default=32, help="cache side in pixels for a new workspace (default 32)")
    le.add_argument("--json", action="store_true")
    le.set_defaults(func=run_label_efficiency)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


@handle_errors
def run_label_efficiency(args) -> int:
    from sslapp.bench.label_efficiency import BenchError, run_label_efficiency

    if args.round_size < 1:
        raise CLIError("--round must be at least 1", 2)
    try:
        out = run_label_efficiency(
            args.images_dir, args.truth, budgets=args.budgets,
            strategies=[s.strip() for s in args.strategies.split(",") if s.strip()],
            pretrain_minutes=args.pretrain_minutes, workspace=args.workspace, seed=args.seed,
            random_seeds=args.random_seeds, round_size=args.round_size, cache_size=args.cache_size,
            method=args.method, reuse_encoder=args.reuse_encoder,
            embeddings=[e.strip() for e in args.embeddings.split(",") if e.strip()],
            text_column=args.text_column, truth_column=args.truth_column, say=say)
    except BenchError as exc:
        raise CLIError(str(exc), 2) from exc
    lines = [f"pretrain: {out['pretrain']['method']} ({out['pretrain']['seconds']}s)",
             "embedding  strategy      budget labels accuracy          balanced estimate covered"]
    for r in out["results"]:
        spread = f" ± {r['accuracy_std']:.3f}" if "accuracy_std" in r else ""
        shown = (f"{r['estimate']:>8.3f} {r['coverage']:>7.0%}" if r.get("coverage") is not None
                 else f"{'—':>8} {'—':>7}")
        balanced = f"{r['balanced_accuracy']:.3f}" if r.get("balanced_accuracy") is not None else "—"
        lines.append(f"{r['embedding']:<10} {r['strategy']:<13} {r['budget']:>6} {r['labels']:>6} "
                     f"{r['accuracy']:.3f}{spread:<10} {balanced:>8} {shown}")
    cov = out["coverage"]
    if cov["runs"]:
        lines.append(f"the estimate's 95% interval held the true class-balanced accuracy in {cov['covered']} of "
                     f"{count(cov['runs'], 'run')} ({cov['rate']:.0%}; goal {cov['goal']:.0%}; {cov['below']} below, "
                     f"{cov['above']} above); the plain-accuracy interval held plain accuracy in "
                     f"{cov['pooled_rate']:.0%}")
    lines.append("baseline                budget accuracy")
    for b in out["baselines"]:
        spread = f" ± {b['accuracy_std']:.3f}" if "accuracy_std" in b else ""
        lines.append(f"{b['name']:<23} {b['budget']:>6} {b['accuracy']:.3f}{spread}")
    emit(out, args.json, "\n".join(lines))
    return 0
