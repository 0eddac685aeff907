"""A table of texts with only some of its classes, for the text label-efficiency runs: the 10-intent
subset of banking77's test.csv that docs/benchmarks.md reports (the first N intents by name).

    .venv/bin/python benchmarks/make_text_subset.py ../shared/datasets/banking77/test.csv OUT.csv --classes 10
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("table", type=Path, help="a CSV with a header")
    ap.add_argument("out", type=Path)
    ap.add_argument("--classes", type=int, default=10, help="keep this many classes, first by name (default 10)")
    ap.add_argument("--column", default="category", help="the column of classes (default category)")
    args = ap.parse_args()
    with open(args.table, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows, fields = list(reader), reader.fieldnames or []
    if args.column not in fields:
        raise SystemExit(f"{args.table} has no column {args.column!r} (it has {', '.join(fields)})")
    keep = sorted({r[args.column] for r in rows})[:args.classes]
    kept = [r for r in rows if r[args.column] in keep]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    print(f"wrote {len(kept)} rows of {len(keep)} classes to {args.out}")


if __name__ == "__main__":
    main()
