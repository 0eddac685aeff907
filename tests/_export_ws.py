"""A real tiny workspace with a fine-tuned classifier, shared by the export tests.

Images are real files (PNG, JPEG with EXIF rotation, a large JPEG, RGBA PNG, animated GIF) in
class folders, ingested with folder labels; the classifier is a random resnet18-std at 24 px
(32 px inside), saved and registered the way fine-tuning does.

The workspace is built once per xdist worker (`Base`, the session fixtures in tests/conftest.py;
the export test files share an xdist group); a test that changes it works on a copy (`Base.copy`).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CACHE = 24
CLASSES = ["cat", "dog", "fox"]


def make_images(root: Path, seed: int = 0) -> dict[str, list[Path]]:
    rng = np.random.default_rng(seed)
    made: dict[str, list[Path]] = {}
    for ci, cls in enumerate([*CLASSES, "unlabelled"]):
        folder = root / "images" / cls if cls != "unlabelled" else root / "unlabelled"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for j in range(4):
            w, h = int(rng.integers(30, 60)), int(rng.integers(30, 60))
            base = np.zeros((h, w, 3), np.uint8)
            base[..., ci % 3] = 180
            arr = np.clip(base + rng.integers(0, 75, (h, w, 3)), 0, 255).astype(np.uint8)
            img = Image.fromarray(arr)
            if j == 0:
                p = folder / f"{cls}{j}.png"
                img.save(p)
            elif j == 1:  # large JPEG: decoded in draft mode; EXIF says rotate
                big = img.resize((130, 90))
                exif = Image.Exif()
                exif[0x0112] = 6
                p = folder / f"{cls}{j}.jpg"
                big.save(p, quality=90, exif=exif)
            elif j == 2:
                rgba = img.convert("RGBA")
                a = np.asarray(rgba).copy()
                a[: h // 2, :, 3] = 60
                p = folder / f"{cls}{j}.png"
                Image.fromarray(a, "RGBA").save(p)
            else:
                p = folder / f"{cls}{j}.gif"
                img.save(p, save_all=True, append_images=[Image.fromarray(255 - arr)], duration=100)
            paths.append(p)
        made[cls] = paths
    return made


def build_workspace(root: Path, with_classifier: bool = True, seed: int = 0):
    """(workspace, model, images): ingested images, encoder artifact, and (optionally) a classifier."""
    import torch

    from sslapp.ingest.ingest import ingest
    from sslapp.models.encoder import Encoder, EncoderConfig, save_encoder
    from sslapp.workspace import open_workspace

    images = make_images(root, seed)
    ws = open_workspace(root / "ws", cache_size=CACHE)
    ingest(ws, [root / "images"], labels_from_dirs=True, workers=1)
    ingest(ws, [root / "unlabelled"], workers=1)
    # one label given by a person in the app
    first = ws.store.items()[0]
    ws.store.set_labels([first["id"]], ws.store.class_id("dog"), source="user")

    torch.manual_seed(seed)
    encoder = Encoder(EncoderConfig("resnet18-std", CACHE, 32, method="simclr"))
    run = ws.store.create_run("pretrain", {"method": "simclr"})
    save_encoder(encoder, ws.checkpoints_dir / "encoder.safetensors")
    ws.store.add_artifact("encoder", "checkpoints/encoder.safetensors", {"method": "simclr", "epochs": 1}, run)
    if not with_classifier:
        return ws, None, images
    return ws, add_classifier(ws, encoder), images


def add_classifier(ws, encoder=None):
    """Save and register a classifier (and its predictions on every item) as fine-tuning does."""
    import torch

    from sslapp.finetune.model import Classifier, save_classifier
    from sslapp.models.encoder import load_encoder

    encoder = encoder or load_encoder(ws.checkpoints_dir / "encoder.safetensors")
    model = Classifier(encoder, CLASSES, normalize=True).eval()  # as the linear probe fine-tuning saves
    with torch.no_grad():  # a head with spread-out probabilities makes the comparison meaningful
        model.head.weight.mul_(300)
    run = ws.store.create_run("finetune", {"mode": "linear"})
    save_classifier(model, ws.checkpoints_dir / "classifier.safetensors")
    counts = ws.store.label_counts()
    encoder_art = next(a for a in ws.store.artifacts("encoder") if a["path"] == "checkpoints/encoder.safetensors")
    ws.store.add_artifact("classifier", "checkpoints/classifier.safetensors",
                          {"classes": CLASSES, "mode": "linear", "cv": {"mean": 0.8, "std": 0.05, "low": 0.6, "high": 0.92, "n_labels": 12,
                                                          "measure": "class-balanced accuracy", "imbalance": 4.0,
                                                          "unbalanced": True},
                           "label_counts": counts, "encoder_artifact_id": encoder_art["id"]}, run)
    # the app's predictions: the classifier on the cached uint8 rows / 255
    from sslapp.ingest.cache import read_cache

    cache = read_cache(ws)
    ids = [i for i, _ in ws.store.item_ids_and_cache_index()]
    idx = [c for _, c in ws.store.item_ids_and_cache_index()]
    with torch.no_grad():
        probs = model(torch.from_numpy(np.asarray(cache[idx])).permute(0, 3, 1, 2).float() / 255.0).numpy()
    class_ids = [ws.store.class_id(c) for c in CLASSES]
    rows = [(i, class_ids[int(p.argmax())], float(p.max())) for i, p in zip(ids, probs, strict=True)]
    unl = ws.store.unlabeled_ids()
    # two unlabelled items: one confident (propagated into labels), one not
    rows = [(i, c, 0.97 if i == unl[0] else 0.5 if i == unl[1] else p) for i, c, p in rows]
    ws.store.save_predictions(run, rows)
    return model


def app_probs(ws, model) -> dict[str, np.ndarray]:
    """What the app computes: the classifier on the cached uint8 rows / 255, by source name."""
    import torch

    from sslapp.ingest.cache import read_cache

    cache = read_cache(ws)
    items = ws.store.items()
    x = torch.from_numpy(np.asarray(cache[[it["cache_index"] for it in items]])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        probs = model(x).numpy()
    return {it["source"]: p for it, p in zip(items, probs, strict=True)}


def export_cli(args: list[str]) -> dict:
    """`sslapp export ARGS --json` in this process; returns the manifest it printed."""
    from sslapp.cli import main

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["export", *args, "--json"]) == 0
    return json.loads(stdout.getvalue())


def total_bytes(manifest: dict) -> int:
    return sum(f["bytes"] for f in manifest["files"].values())


@dataclass
class Base:
    """`build_workspace(root, with_classifier=False)`, closed: the images under `root` and the
    workspace in `root / "ws"`, with torch's random state right after it (the classifier made from
    it is the one `build_workspace(root)` makes)."""

    root: Path
    images: dict[str, list[Path]]
    rng_state: object

    @classmethod
    def build(cls, root: Path) -> Base:
        import torch

        ws, _, images = build_workspace(root, with_classifier=False)
        rng_state = torch.get_rng_state()
        ws.store.close()
        return cls(root, images, rng_state)

    def copy(self, dest: Path, with_classifier: bool = True):
        """(workspace, model or None): a copy of the workspace in `dest / "ws"`, with the classifier
        `build_workspace` makes when asked. Its items name the base's image files, under `self.root`."""
        import torch

        from sslapp.models.encoder import load_encoder
        from sslapp.workspace import open_workspace

        shutil.copytree(self.root / "ws", dest / "ws")
        ws = open_workspace(dest / "ws")
        if not with_classifier:
            return ws, None
        encoder = load_encoder(ws.checkpoints_dir / "encoder.safetensors")  # draws random numbers itself
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.rng_state)
            return ws, add_classifier(ws, encoder)
