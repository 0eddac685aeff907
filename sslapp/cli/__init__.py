"""The `sslapp` command line: one module per subcommand, each with `register(subparsers)`.

Subcommand modules import heavy libraries (torch, umap) inside their handlers only, so
`sslapp --help` and `sslapp predict` stay light.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sslapp import __version__

COMMANDS = ["ingest", "info", "worker", "jobs", "pretrain", "embed", "label", "labels", "suggest",
            "finetune", "export", "predict", "bench", "embeddings", "models", "review", "similar", "near_duplicates"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sslapp", description="Few-label image classification: ingest, pretrain, explore, label, "
        "train and export, one workspace folder per project.")
    parser.add_argument("--version", action="version", version=f"sslapp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:  # a missing module is a broken install: let the import error say so
        importlib.import_module(f"sslapp.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
