"""The starting encoders: made without a training loop right after ingest, one for each name the
workspace's modality lists (`Modality.starting_encoders`; the setting features.starts overrides it).

Images: ImageNet EfficientNet-Lite0 (frozen, weights from a pip package), and the whitened-patch
dictionary (`sslapp.models.patches`) and pixel PCA fitted on the user's own images. Sounds: the same
ImageNet network and patch dictionary on their log-mel pictures, and MFCC statistics (`sslapp.models.mfcc`,
standardised on the user's sounds). Texts:
all-MiniLM-L6-v2 (frozen, from a pip package, checked by hash; its file names the model and holds no
weights) and TF-IDF + SVD fitted on the user's own texts (`sslapp.models.text`). Each becomes an
'encoder' artifact whose meta names its start; the features service caches what they compute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sslapp.features.read import STARTS_SETTING, current_items
from sslapp.modalities import workspace_modality
from sslapp.workspace import Workspace

Progress = Callable[..., None]
# A start's artifact and, when making it embedded every item already, their features (rows follow
# `current_items`), else None.
Made = tuple[dict[str, Any], np.ndarray | None]
IMAGENET_BACKBONE = "efficientnet-lite0"
# 128 px: kNN 0.696 on cifar10 against 0.653 at 96 and 0.534 at 64, at ~100 images/s on 2 cores.
IMAGENET_SIZE = 128
PATCH_SIZE = 32


def _installed(start: str) -> bool:
    """Whether the package a start's weights ship in is installed (starts fitted on the items need none)."""
    if start == "imagenet":
        from sslapp.models.shipped import imagenet_available

        return imagenet_available(IMAGENET_BACKBONE)
    if start == "minilm":
        from sslapp.models.text.minilm_files import available

        return available()
    return True


def wanted_starts(ws: Workspace) -> list[str]:
    """The starts this workspace should have: the modality's (or the setting's), those whose weights are installed."""
    wanted = ws.store.get_setting(STARTS_SETTING, list(workspace_modality(ws).starting_encoders))
    return [s for s in wanted if s in MAKERS and _installed(s)]


def add_start_file(ws: Workspace, start: str, suffix: str, write: Callable[[Any], None],
                   meta: dict[str, Any]) -> dict[str, Any]:
    """Write a start's encoder file (`write(path)`) as `checkpoints/start-<start>-<ms><suffix>` and register it."""
    rel = f"checkpoints/start-{start}-{int(time.time() * 1000)}{suffix}"
    (ws.root / rel).parent.mkdir(parents=True, exist_ok=True)
    write(ws.root / rel)
    art_id = ws.store.add_artifact("encoder", rel, meta)
    return {"id": art_id, "path": rel, "meta": meta, "run_id": None, "kind": "encoder"}


def _save_start(ws: Workspace, encoder, start: str, extra: dict[str, Any]) -> dict[str, Any]:
    from sslapp.models.encoder import save_encoder

    meta = {"start": start, "method": start, "modality": workspace_modality(ws).name, "backbone": encoder.config.backbone,
            "train_size": encoder.config.train_size, **extra}
    return add_start_file(ws, start, ".safetensors", lambda path: save_encoder(encoder, path), meta)


def _imagenet(ws: Workspace, progress: Progress | None, seed: int) -> Made:
    from sslapp.models.backbones import Backbone
    from sslapp.models.encoder import Encoder, EncoderConfig
    from sslapp.models.weights import init_backbone

    enc = Encoder(EncoderConfig(IMAGENET_BACKBONE, ws.cache_size, IMAGENET_SIZE, method="imagenet",
                                extra={"start": "imagenet"}))
    init_backbone(Backbone(enc.backbone, enc.dim, IMAGENET_BACKBONE, IMAGENET_SIZE), "imagenet")
    return _save_start(ws, enc.eval(), "imagenet", {"init": "imagenet"}), None


def _fit_images(ws: Workspace, start: str, progress: Progress | None, seed: int) -> Made:
    """Fit a starting encoder without a training loop (patch dictionary or pixel PCA) on up to 5,000
    images; when that is every image, their features come back too."""
    import torch

    from sslapp.ingest.cache import read_cache
    from sslapp.models.encoder import Encoder, EncoderConfig
    from sslapp.models.patches import fit_sample

    _, rows = current_items(ws)
    sample = fit_sample(len(rows), seed)
    modality = workspace_modality(ws)
    if start == "patches":
        from sslapp.models.patches import ATOMS, DIMS, PATCH, fit_patch_codes

        options, size = {"atoms": ATOMS, "patch": PATCH, "dims": DIMS}, PATCH_SIZE
        fit = lambda x: fit_patch_codes(x, seed=seed, **options)  # noqa: E731
        what = "learning a patch dictionary"
    elif start == "mfcc":
        from sslapp.models.mfcc import fit_mfcc

        options, size, fit, what = {}, ws.cache_size, fit_mfcc, "measuring MFCC statistics"
    else:
        from sslapp.models.pixels import DIMS as PIXEL_DIMS
        from sslapp.models.pixels import SIDE, fit_pixel_pca

        options, size = {"side": SIDE, "dims": PIXEL_DIMS}, ws.cache_size
        fit = lambda x: fit_pixel_pca(x, **options)  # noqa: E731
        what = "fitting a pixel PCA"
    if progress:
        progress(message=f"{what} on {len(sample)} of your {modality.plural}")
    enc = Encoder(EncoderConfig(start, ws.cache_size, size, method=start,
                                extra={"start": start, "backbone_options": options}))
    with torch.inference_mode():
        x = enc.preprocess(torch.from_numpy(
            modality.model_input(np.asarray(read_cache(ws)[rows[sample]]))))
    fitted, feats = fit(x)
    enc.backbone.load_state_dict(fitted.state_dict())
    art = _save_start(ws, enc.eval(), start, options)
    return art, (feats.numpy() if len(sample) == len(rows) else None)


def _minilm(ws: Workspace, progress: Progress | None, seed: int) -> Made:
    """A file that names the installed all-MiniLM-L6-v2 and its hashes (checked now, and at every load)."""
    from sslapp.models.text.base import write_text_encoder_file
    from sslapp.models.text.minilm import file_config
    from sslapp.models.text.minilm_files import BACKBONE, MODEL, model_folder, verify

    if progress:
        progress(message=f"checking the {MODEL} files")
    verify(model_folder())
    config = file_config()
    meta = {"start": "minilm", "method": "minilm", "modality": workspace_modality(ws).name, "backbone": BACKBONE,
            "dim": config["dim"], "model": MODEL, "revision": config["revision"], "sha256": config["sha256"]}
    return add_start_file(ws, "minilm", ".safetensors", lambda path: write_text_encoder_file(path, config, {}),
                          meta), None


def _fit_tfidf(ws: Workspace, progress: Progress | None, seed: int) -> Made:
    """TF-IDF + SVD fitted on the texts (a seeded sample beyond FIT_CAP); when that is every text,
    their features come back too."""
    from sslapp.ingest.cache import read_cache
    from sslapp.modalities.text.arrays import texts_of
    from sslapp.models.text import save_text_encoder
    from sslapp.models.text.tfidf import fit_sample, fit_tfidf

    _, rows = current_items(ws)
    sample = fit_sample(len(rows), seed)
    if progress:
        progress(message=f"fitting TF-IDF + SVD on {len(sample)} of your texts")
    texts = texts_of(np.asarray(read_cache(ws)[rows[sample]]))
    enc = fit_tfidf(texts, seed=seed)
    meta = {"start": "tfidf", "method": "tfidf", "modality": workspace_modality(ws).name, "backbone": "tfidf-svd",
            "dim": enc.dim, "terms": len(enc.vocabulary), "fit_items": int(len(sample)), "seed": int(seed)}
    art = add_start_file(ws, "tfidf", ".safetensors", lambda path: save_text_encoder(enc, path), meta)
    return art, (enc.embed(texts) if len(sample) == len(rows) else None)


MAKERS: dict[str, Callable[[Workspace, Progress | None, int], Made]] = {
    "imagenet": _imagenet,
    "patches": lambda ws, progress, seed: _fit_images(ws, "patches", progress, seed),
    "pixels": lambda ws, progress, seed: _fit_images(ws, "pixels", progress, seed),
    "mfcc": lambda ws, progress, seed: _fit_images(ws, "mfcc", progress, seed),
    "minilm": _minilm,
    "tfidf": _fit_tfidf,
}


def make_start(ws: Workspace, start: str, progress: Progress | None = None, seed: int = 0) -> Made:
    """Make the starting encoder `start` (a name in MAKERS) for this workspace."""
    return MAKERS[start](ws, progress, seed)
