"""A tiny real workspace for the training tests: coloured squares in 3 classes at 16 px, ingested,
a random-init encoder registered as the pretrained one, and some labels given by a "user"."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

CACHE = 16
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 220)}


def square_png(rng: np.random.Generator, colour: tuple[int, int, int], side: int = 24) -> bytes:
    """A coloured square at a random place on grey noise: easy for any feature, not for chance."""
    arr = np.clip(128 + rng.integers(-25, 25, (side, side, 3)), 0, 255).astype(np.uint8)
    y, x = rng.integers(0, side // 2, 2)
    arr[y:y + side // 2, x:x + side // 2] = colour
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_workspace(root, per_class: int = 20, labels_per_class: dict[str, int] | None = None, seed: int = 0):
    """(ws, truth): ingested squares, an encoder artifact (random init), some user labels."""
    import torch

    from sslapp.ingest.ingest import ingest
    from sslapp.ingest.sources import SourceItem
    from sslapp.models.encoder import Encoder, EncoderConfig, save_encoder
    from sslapp.workspace import open_workspace

    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    items = [SourceItem(name=f"{c}/{j}.png", data=square_png(rng, COLOURS[c]), ext=".png")
             for j in range(per_class) for c in names]
    ws = open_workspace(root / "ws", cache_size=CACHE)
    ingest(ws, items, workers=1)
    truth = {it["id"]: it["source"].split("/")[0] for it in ws.store.items()}
    labels_per_class = labels_per_class or dict.fromkeys(names, 4)
    for c, k in labels_per_class.items():
        ids = [i for i, t in truth.items() if t == c][:k]
        if ids:
            ws.store.set_labels(ids, ws.store.class_id(c, create=True), source="user")
    torch.manual_seed(seed)
    encoder = Encoder(EncoderConfig("resnet18-std", CACHE, CACHE, method="simclr"))
    save_encoder(encoder, ws.checkpoints_dir / "encoder.safetensors")
    run = ws.store.create_run("pretrain", {"method": "simclr"})
    ws.store.add_artifact("encoder", "checkpoints/encoder.safetensors", {"method": "simclr",
                                                                      "backbone": "resnet18-std"}, run)
    ws.store.set_setting("features.starts", [])  # this encoder is the only candidate: tests know its features
    return ws, truth
