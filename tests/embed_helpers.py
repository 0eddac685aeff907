"""Tiny real workspaces for the embed, explore and label tests: PNG files through real ingestion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def write_images(folder: Path, per_class: int, size: int = 16, seed: int = 0) -> dict[str, list[Path]]:
    """Well-separated synthetic classes: a coloured square on a noisy background, in class folders."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Path]] = {}
    for name, color in COLORS.items():
        d = folder / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(90, 140, size=(size, size, 3)).astype(np.uint8)
            a = size // 4  # same place in every image: colour is the only group structure
            img[a:a + size // 2, a:a + size // 2] = np.clip(np.array(color) + rng.integers(-20, 20, 3), 0, 255)
            p = d / f"{name}-{i:03d}.png"
            Image.fromarray(img).save(p)
            out.setdefault(name, []).append(p)
    return out


def make_workspace(root: Path, per_class: int, size: int = 16, seed: int = 0):
    """A workspace with 3 * per_class ingested images; returns (ws, {source name: true class})."""
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    images = root / "images"
    write_images(images, per_class, size, seed)
    ws = open_workspace(root / "ws", cache_size=size)
    report = ingest(ws, [images], workers=1, base=str(images))
    assert report["added"] == 3 * per_class, report
    truth = {r["source"]: Path(r["source"]).parent.name for r in ws.store.items()}
    return ws, truth
