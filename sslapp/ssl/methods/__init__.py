"""SSL methods, one file each, chosen by name. Modules import lazily so the CLI stays fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sslapp.registry import Entry, Registry

if TYPE_CHECKING:
    from sslapp.models.backbones import Backbone
    from sslapp.ssl.methods.base import SSLMethod

_M = "sslapp.ssl.methods"
# defaults: what a plan needs to know before building the method (its hyperparameters live in the class).
METHODS = Registry("method", [
    Entry("simclr", "SimCLR — contrastive, robust default", f"{_M}.simclr:SimCLR"),
    Entry("mocov3", "MoCo v3 — contrastive with a momentum encoder", f"{_M}.mocov3:MoCoV3"),
    Entry("byol", "BYOL — no negatives, momentum teacher", f"{_M}.byol:BYOL"),
    Entry("swav", "SwAV — prototypes and multi-crop", f"{_M}.swav:SwAV"),
    Entry("dino", "DINO — self-distillation, multi-crop", f"{_M}.dino:DINO"),
    Entry("mae", "MAE — masked autoencoder (ViT only)", f"{_M}.mae:MAE", {"vit_only": True}),
    Entry("rotation", "Rotation prediction — classic pretext baseline", f"{_M}.rotation:RotationPrediction"),
])


def method_class(name: str) -> type[SSLMethod]:
    return METHODS.load(name)


def build_method(name: str, backbone: Backbone, **hparams: Any) -> SSLMethod:
    """The method called `name` around `backbone` (heads randomly initialised)."""
    return method_class(name)(backbone, **hparams)
