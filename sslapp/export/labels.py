"""The labels of a workspace as CSV/JSON rows, and an ImageFolder tree of the labelled originals.

Sources: `user` (labelled in the app or CLI), `imported` (from folder names at ingestion),
`propagated` (a label the fine-tuning stored as propagated, or a confident prediction of the
latest classifier for an unlabelled item). Propagated rows are machine guesses and say so, with
their confidence; the ImageFolder tree holds only labels a person gave (user, imported).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from sslapp.workspace import Workspace

DEFAULT_PROPAGATE_THRESHOLD = 0.9
FIELDS = ("item_id", "path", "class", "source", "confidence", "original", "sha256")
HUMAN_SOURCES = ("user", "imported")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def label_rows(ws: Workspace, predictions_run_id: int | None = None,
               threshold: float | None = DEFAULT_PROPAGATE_THRESHOLD) -> list[dict[str, Any]]:
    """One row per labelled item, plus unlabelled items the classifier run predicts with confidence >= threshold.

    `predictions_run_id` is the classifier's run (None: no propagated predictions are added);
    `threshold=None` adds none either.
    """
    store = ws.store
    labels = store.labels()
    rows: dict[int, dict[str, Any]] = {
        r["item_id"]: {"item_id": r["item_id"], "class": r["class_name"], "source": r["source"], "confidence": None}
        for r in labels}
    if predictions_run_id is not None and threshold is not None:
        unlabelled = set(store.unlabeled_ids(include_skipped=True))
        for p in store.predictions(predictions_run_id):
            if p["item_id"] in unlabelled and p["confidence"] >= threshold:
                rows[p["item_id"]] = {"item_id": p["item_id"], "class": p["class_name"], "source": "propagated",
                                      "confidence": round(float(p["confidence"]), 6)}
    items = {it["id"]: it for it in store.items(ids=sorted(rows))}
    out = []
    for item_id in sorted(rows):
        item = items.get(item_id)
        if item is None:  # removed since
            continue
        out.append({**rows[item_id], "path": item["source"], "original": item.get("original"),
                    "sha256": item["sha256"]})
    return [{k: r[k] for k in FIELDS} for r in out]


def write_labels(rows: list[dict[str, Any]], folder: Path) -> dict[str, str]:
    """labels.csv and labels.json in `folder`; returns {file name: what it is}."""
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if r[k] is None else r[k] for k in FIELDS})
    (folder / "labels.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return {"labels.csv": "labels as CSV", "labels.json": "labels as JSON"}


def safe_name(name: str, fallback: str) -> str:
    """A file or folder name that is safe on every OS (no separators, no leading dot)."""
    cleaned = _UNSAFE.sub("_", name).strip(" .")[:100]
    return cleaned or fallback


def write_imagefolder(ws: Workspace, rows: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """Copy the originals of human-labelled items to `folder/<class>/<id>_<name>`; returns a summary."""
    class_dirs: dict[str, str] = {}
    used: set[str] = set()
    copied, missing = 0, []
    for r in rows:
        if r["source"] not in HUMAN_SOURCES:
            continue
        cls = r["class"]
        if cls not in class_dirs:
            base = safe_name(cls, "class")
            name, n = base, 2
            while name.lower() in used:  # distinct classes must not share a folder
                name, n = f"{base}_{n}", n + 1
            used.add(name.lower())
            class_dirs[cls] = name
            (folder / name).mkdir(parents=True, exist_ok=True)
        src = ws.root / r["original"] if r["original"] else None
        if src is None or not src.is_file():
            missing.append(r["path"])
            continue
        stem = safe_name(PurePosixPath(r["path"].replace("\\", "/").split(":")[-1]).stem, "image")[:60]
        shutil.copyfile(src, folder / class_dirs[cls] / f"{r['item_id']:06d}_{stem}{src.suffix.lower()}")
        copied += 1
    return {"folder": folder.name, "class_folders": class_dirs, "images": copied,
            "missing_originals": len(missing), "missing_examples": missing[:10]}
