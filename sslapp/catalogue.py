"""What a user can choose for pretraining, derived from the registries (`sslapp.ssl.methods.METHODS`,
`sslapp.models.registry`): name -> one-line description, torch-free, for the pages and the CLI."""

from __future__ import annotations

from sslapp.models.registry import AUTO, IMAGENET_BACKBONES, init_problem
from sslapp.models.registry import BACKBONES as _BACKBONES
from sslapp.models.registry import INITS as _INITS
from sslapp.ssl.methods import METHODS as _METHODS

__all__ = ["AUTO", "BACKBONES", "IMAGENET_BACKBONES", "INITS", "METHODS", "backbone_names", "init_names",
           "init_problem", "method_names"]

METHODS: dict[str, str] = _METHODS.descriptions()
BACKBONES: dict[str, str] = {AUTO: "picked by device and image size (docs/benchmarks.md)", **_BACKBONES.descriptions()}
INITS: dict[str, str] = _INITS.descriptions()


def method_names(modality: str = "image") -> list[str]:
    """The methods that train on this kind of item, in registry order."""
    return [name for name, entry in _METHODS.items() if entry.defaults.get("modality", "image") == modality]


def backbone_names() -> list[str]:
    """Every backbone name a user can pick, `auto` first."""
    return list(BACKBONES)


def init_names() -> list[str]:
    """Pretraining starting points, `auto` first (the default)."""
    return list(INITS)
