"""Write tests/data/banking77_sample.csv: 64 real customer queries from banking77's test split, 16 of each
of 4 intents, for the browser test of the text journey (tests/browser/test_journey_texts.py).

    python tests/data/make_banking77_sample.py [BANKING77_TEST_CSV]   (default: ../shared/datasets/banking77/test.csv)

Deterministic: for each intent in INTENTS, its first 16 rows in the file's order, leaving out texts already
taken (after whitespace is collapsed, as ingestion merges exact copies). Columns `text,category`, the
texts unchanged. banking77 (Casanueva et al. 2020, PolyAI-LDN/task-specific-datasets) is CC BY 4.0; see
tests/data/banking77_sample.README.md.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

INTENTS = ["card_arrival", "exchange_rate", "terminate_account", "age_limit"]
PER_INTENT = 16
HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "datasets" / "banking77" / "test.csv"


def build(source: Path, out: Path) -> list[tuple[str, str]]:
    with open(source, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    picked: list[tuple[str, str]] = []
    seen: set[str] = set()
    for intent in INTENTS:
        taken = 0
        for row in rows:
            key = " ".join(row["text"].split())
            if row["category"] != intent or key in seen or taken == PER_INTENT:
                continue
            seen.add(key)
            picked.append((row["text"], intent))
            taken += 1
        assert taken == PER_INTENT, (intent, taken)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "category"])
        writer.writerows(picked)
    return picked


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    print(f"{len(build(source, HERE / 'banking77_sample.csv'))} texts written")
