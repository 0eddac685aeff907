"""The simulated user's pile: a folder of images with a truth CSV, or a table of texts whose truth
column is read here and hidden from the app; the truth aligned with the ingested items, and the cheap
baseline features a benchmark compares against (pixels for images, TF-IDF for texts)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class BenchError(ValueError):
    """Input the benchmark cannot use, with what to do instead."""


@dataclass
class Truth:
    """Ground truth for the ingested items, aligned with the feature rows."""

    item_ids: np.ndarray  # (N,) item id of each feature row
    y: np.ndarray  # (N,) class index, -1 where the truth has no row
    classes: list[str]


def read_truth(path: str | Path) -> dict[str, str]:
    """`relative/path.png,class` rows -> {path: class}; a header row `path,label` is allowed."""
    path = Path(path)
    if not path.exists():
        raise BenchError(f"truth file {path} does not exist")
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise BenchError(f"{path} line {n}: expected 'relative image path,class name', got {row!r}")
            rel, cls = row[0].strip().replace("\\", "/"), row[1].strip()
            if n == 1 and rel.lower() in ("path", "file", "filename", "image") and not cls.isdigit():
                continue  # header
            out[rel] = cls
    _check_classes(out, path)
    return out


def _check_classes(truth: dict[str, str], where: Any) -> None:
    if len(set(truth.values())) < 2:
        raise BenchError(f"{where} names {len(set(truth.values()))} class(es); the benchmark needs at least 2")


def read_truth_column(table: Path, column: str) -> dict[str, str]:
    """{"NAME:ROW": class} from a table's truth column (1-based data rows, as ingest names them)."""
    import pandas as pd

    suffix = table.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(table)
        elif suffix in (".jsonl", ".ndjson"):
            frame = pd.read_json(table, lines=True, dtype=False)
        else:
            frame = pd.read_csv(table, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot read {table}: {exc}") from exc
    if column not in frame.columns:
        raise BenchError(f"{table.name} has no column {column!r} (it has {', '.join(map(str, frame.columns))}); "
                         "name the answers' column with --truth-column")
    truth = {f"{table.name}:{n}": str(v).strip() for n, v in enumerate(frame[column].tolist(), start=1)
             if str(v).strip()}
    _check_classes(truth, f"the column {column!r} of {table.name}")
    return truth


def prepare_workspace(source: Path, truth_map: dict[str, str], workspace: Path, cache_size: int, say,
                      options: dict[str, Any] | None = None) -> tuple[Any, Truth]:
    """Ingest the pile once (reused when the workspace holds items) and align the truth with it."""
    from sslapp.ingest.ingest import ingest
    from sslapp.modalities import workspace_modality
    from sslapp.workspace import open_workspace

    ws = open_workspace(workspace, cache_size=cache_size)
    if ws.store.count_items() == 0:
        base = source if source.is_dir() else source.parent
        report = ingest(ws, [str(source)], base=str(base), options=options)
        noun = workspace_modality(ws).plural
        say(f"ingested {report['added']} {noun} ({len(report['skipped'])} skipped, "
            f"{report['duplicates']} duplicates) in {report['seconds']:.1f}s")
    else:
        say(f"reusing {ws.store.count_items()} items already in {ws.root}")
    classes = sorted(set(truth_map.values()))
    index = {c: k for k, c in enumerate(classes)}
    pairs = ws.store.items()
    item_ids = np.array([r["id"] for r in pairs], np.int64)
    y = np.array([index.get(truth_map.get(r["source"], ""), -1) for r in pairs], np.int64)
    if (y >= 0).sum() == 0:
        raise BenchError("no ingested item has an answer in the truth; image paths must be relative to the "
                         f"folder (e.g. {pairs[0]['source'] if pairs else 'img/0001.png'})")
    if (y < 0).any():
        say(f"{int((y < 0).sum())} items have no answer in the truth; they are never suggested nor scored")
    return ws, Truth(item_ids, y, classes)


def cheap_baseline(ws, seed: int) -> tuple[str, np.ndarray]:
    """(name, features) of the modality's baseline that needs no model (images: PCA-50 of the cached
    pixels; texts: TF-IDF + SVD), in store order."""
    from sslapp.ingest.cache import read_cache
    from sslapp.modalities import workspace_modality

    rows = np.array([p[1] for p in ws.store.item_ids_and_cache_index()], np.int64)
    return workspace_modality(ws).baseline_features(read_cache(ws), rows, seed)
