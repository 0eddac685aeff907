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
    if start == "imagenet":
        return "ImageNet EfficientNet-Lite0 (frozen)"
    if start == "patches":
        return "patch dictionary of your images"
    if start == "pixels":
        return "pixels (PCA)"
    if start == "imported":
        return describe_imported(meta)
    method = str(meta.get("method", "encoder"))
    nice = {"simclr": "SimCLR", "mocov3": "MoCo v3", "byol": "BYOL", "swav": "SwAV", "dino": "DINO", "mae": "MAE",
            "rotation": "rotation"}.get(method, method)
    init = {"imagenet": " from ImageNet", "patches": " (first layer from patches)"}.get(meta.get("init"), "")
    epochs = meta.get("epoch")
    length = "" if epochs is None else f", {epochs} epoch" + ("" if epochs == 1 else "s")
    return f"{nice} {meta.get('backbone', '')}".strip() + init + length


def current_items(ws: Workspace) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, cache rows) of every active item, in the store's order: the rows every consumer uses."""
    pairs = ws.store.item_ids_and_cache_index()
    if not pairs:
        raise ValueError("the workspace has no images yet; add images on the Data page or with `sslapp ingest`")
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def encoders(ws: Workspace) -> list[dict[str, Any]]:
    """The candidate encoders, oldest first: each starting encoder, each pretraining run's newest
    encoder and the newest import of each name, whose file still exists."""
    seen: set[Any] = set()
    out = []
    for art in ws.store.artifacts("encoder", limit=100_000):  # newest first
        meta = art.get("meta") or {}
        start = meta.get("start")
        group = ("start", start, meta.get("name") if start == "imported" else None) if start else \
            ("run", art.get("run_id"), art["id"] if art.get("run_id") is None else None)
        if group in seen or not (ws.root / art["path"]).exists():
            continue
        seen.add(group)
        out.append(art)
    return out[::-1]
