"""The torch-free read side of features: setting keys, encoder names and the candidate list.

Pages, the CLI's `info` and curation read these without importing a compute module; the compute side
(`sslapp.features.service`) writes the settings they read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sslapp.workspace import Workspace

CHOICE_SETTING = "features.choice"
PINNED_SETTING = "features.pinned"  # an encoder artifact id the user chose, or None
STARTS_SETTING = "features.starts"  # which starting encoders to make (default: the modality's)


def is_imported(artifact: dict[str, Any] | None) -> bool:
    return bool(artifact) and (artifact.get("meta") or {}).get("start") == "imported"


def describe_imported(meta: dict[str, Any]) -> str:
    file, name = meta.get("file", ""), meta.get("name", "")
    label = f"'{name}' " if name and name != Path(file).stem else ""
    return f"your imported vectors {label}({file})"


def describe(artifact: dict[str, Any]) -> str:
    """A name a person understands: 'ImageNet EfficientNet-Lite0 (frozen)', 'SimCLR resnet18-std, 36 epochs'."""
    meta = artifact.get("meta") or {}
    start = meta.get("start")
    sounds = meta.get("modality") == "audio"
    if start == "imagenet":
        return "ImageNet EfficientNet-Lite0 (frozen)" + (" on log-mel pictures" if sounds else "")
    if start == "patches":
        return "patch dictionary of your " + ("sounds' log-mel pictures" if sounds else "images")
    if start == "mfcc":
        return "MFCC statistics and contour"
    if start == "pixels":
        return "pixels (PCA)"
    if start == "minilm":
        return "MiniLM-L6 (sentence-transformers, frozen)"
    if start == "tfidf":
        return "TF-IDF + SVD"
    if start == "imported":
        return describe_imported(meta)
    if start == "local":
        return f"your model '{meta.get('name', '?')}' ({meta.get('backbone', 'transformer')}, " \
               f"{meta.get('pooling', 'mean')} pooling)"
    method = str(meta.get("method", "encoder"))
    nice = {"simclr": "SimCLR", "mocov3": "MoCo v3", "byol": "BYOL", "swav": "SwAV", "dino": "DINO", "mae": "MAE",
            "rotation": "rotation", "jigsaw": "jigsaw", "colorization": "colourisation", "simcse": "SimCSE",
            "word2vec": "Word2Vec + SIF", "mlm": "MLM", "mlm-scratch": "MLM", "byol-a": "BYOL-A", "cpc": "CPC",
            "wav2vec": "wav2vec 2.0-style"}.get(method, method)
    init = {"imagenet": " from ImageNet", "patches": " (first layer from patches)"}.get(meta.get("init"), "")
    init = " from scratch" if method == "mlm-scratch" else init
    epochs = meta.get("epoch")
    length = "" if epochs is None else f", {epochs} epoch" + ("" if epochs == 1 else "s")
    backbone = "" if method == "word2vec" else meta.get("backbone", "")  # its backbone is its name
    return f"{nice} {backbone}".strip() + init + length


def current_items(ws: Workspace) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, cache rows) of every active item, in the store's order: the rows every consumer uses."""
    pairs = ws.store.item_ids_and_cache_index()
    if not pairs:
        raise ValueError("the workspace has no items yet; add some on the Data page or with `sslapp ingest`")
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def probe_rank(artifact: dict[str, Any]) -> tuple[bool, float, int]:
    """How a pretraining run's encoders rank, by the health check each epoch ends with: a collapsed one
    last, then the higher neighbour accuracy on the user's labels, then the newer (so without labels
    the newest healthy one is the best)."""
    probe = (artifact.get("meta") or {}).get("probe") or {}
    knn = probe.get("knn_acc")
    return (not probe.get("collapsed", False), -1.0 if knn is None else float(knn), int(artifact["id"]))


def run_encoder(ws: Workspace, run_id: int) -> dict[str, Any] | None:
    """The encoder a pretraining run keeps as its candidate: its best by `probe_rank` whose file exists."""
    kept = [a for a in ws.store.run_artifacts(run_id, "encoder") if (ws.root / a["path"]).exists()]
    return max(kept, key=probe_rank) if kept else None


def encoders(ws: Workspace) -> list[dict[str, Any]]:
    """The candidate encoders, oldest first: each starting encoder, each pretraining run's best encoder
    (`probe_rank`) and any other of its encoders the user pinned, and the newest import and the newest local
    model folder (`features.local_model`) of each name, whose file still exists."""
    pinned = ws.store.get_setting(PINNED_SETTING)
    best: dict[Any, dict[str, Any]] = {}
    for art in ws.store.artifacts("encoder", limit=100_000):  # newest first
        meta = art.get("meta") or {}
        start = meta.get("start")
        group = ("start", start, meta.get("name") if start in ("imported", "local") else None) if start else \
            ("run", art.get("run_id"), art["id"] if art.get("run_id") is None else None)
        if art["id"] == pinned and group[0] == "run":  # pinned, it stays a candidate beside its run's best
            group = ("pinned",)
        if not (ws.root / art["path"]).exists():
            continue
        if group not in best or (group[0] == "run" and probe_rank(art) > probe_rank(best[group])):
            best[group] = art
    return sorted(best.values(), key=lambda a: a["id"])
