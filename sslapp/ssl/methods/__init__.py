"""SSL methods, one file each, chosen by name. Modules import lazily so the CLI stays fast."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sslapp.ssl.backbones import Backbone
    from sslapp.ssl.methods.base import SSLMethod

METHODS: dict[str, str] = {
    "simclr": "sslapp.ssl.methods.simclr:SimCLR",
    "mocov3": "sslapp.ssl.methods.mocov3:MoCoV3",
    "byol": "sslapp.ssl.methods.byol:BYOL",
    "swav": "sslapp.ssl.methods.swav:SwAV",
    "dino": "sslapp.ssl.methods.dino:DINO",
    "mae": "sslapp.ssl.methods.mae:MAE",
    "rotation": "sslapp.ssl.methods.rotation:RotationPrediction",
}


def method_class(name: str) -> type[SSLMethod]:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_method(name: str, backbone: Backbone, **hparams: Any) -> SSLMethod:
    """The method called `name` around `backbone` (heads randomly initialised)."""
    return method_class(name)(backbone, **hparams)
