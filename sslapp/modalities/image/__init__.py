"""Images: PIL decoding to a square uint8 cache row, JPEG thumbnails, ImageNet-style model input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sslapp.modalities.base import Decoded, Modality
from sslapp.modalities.image import arrays
from sslapp.modalities.image import decode as _decode
from sslapp.modalities.image.fingerprint import fingerprints
from sslapp.modalities.image.prior import prior_order
from sslapp.modalities.image.quick import provisional_features, raw_pixels_pca

FORMAT_EXT = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif",
              "GIF": ".gif"}  # how an original without a usable suffix is named
EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".mpo"})


def decode_items(data: bytes, size: int, options: Mapping[str, Any] | None = None) -> list[Decoded]:
    """File bytes -> one item: the (size, size, 3) uint8 row and a JPEG thumbnail; raises BadImage."""
    p = _decode.prepare(data, size)
    return [Decoded(row=p.array, preview=p.thumb_jpeg,
                    info={"width": p.width, "height": p.height, "format": p.format, "ext": FORMAT_EXT.get(p.format)})]


def cache_row(size: int) -> tuple[tuple[int, ...], str]:
    return (size, size, 3), "uint8"


def model_input(rows: np.ndarray) -> np.ndarray:
    """uint8 (B, S, S, 3) -> float32 (B, 3, S, S) in [0, 1], what every image encoder takes."""
    return arrays.to_nchw_float(rows)


def preprocessing(size: int) -> dict[str, Any]:
    """model.json's account of file -> uint8 row -> model input at `size` px: fields and numbered steps."""
    described = _decode.describe(size)
    return {**described, "steps": [*described["steps"], arrays.describe(size)], "scale": arrays.SCALE}


def quick_features(cache: np.ndarray, rows: np.ndarray | None, dim: int, seed: int) -> np.ndarray:
    return provisional_features(cache, rows, dim=dim, seed=seed)


def input_spec(size: int) -> dict[str, Any]:
    return {"shape": ["batch", 3, size, size], "dtype": "float32", "range": [0.0, 1.0], "layout": arrays.LAYOUT,
            "channels": arrays.CHANNELS}


IMAGE = Modality(
    name="image", noun="image", plural="images", extensions=EXTENSIONS, decode=decode_items, cache_row=cache_row,
    model_input=model_input, preprocessing=preprocessing, input_spec=input_spec,
    quick_features=quick_features, fingerprints=fingerprints,
    starting_encoders=("imagenet", "patches", "pixels"),
    ssl_methods=("simclr", "mocov3", "byol", "swav", "dino", "mae", "rotation", "jigsaw", "colorization"),
    views="sslapp.ssl.augment:make_views", preview="thumbnail", preview_ext=".jpg",
    original_exts=frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}),
    prior_order=prior_order, baseline=("raw-pixels", raw_pixels_pca),
)
