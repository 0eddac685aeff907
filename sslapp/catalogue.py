"""What can be chosen for pretraining, by name, with one line each; imports nothing heavy.

The Streamlit pages and the CLI list these names without loading torch (about 2 s and 300 MB
per process). The real registries (`sslapp.ssl.methods.METHODS`, `sslapp.ssl.backbones.BACKBONES`)
stay the authority on what can be built; tests/test_pretrain_page.py checks the two agree.
"""

from __future__ import annotations

METHODS: dict[str, str] = {
    "simclr": "SimCLR — contrastive, robust default",
    "mocov3": "MoCo v3 — contrastive with a momentum encoder",
    "byol": "BYOL — no negatives, momentum teacher",
    "swav": "SwAV — prototypes and multi-crop",
    "dino": "DINO — self-distillation, multi-crop",
    "mae": "MAE — masked autoencoder (ViT only)",
    "rotation": "Rotation prediction — classic pretext baseline",
}

AUTO = "auto"

BACKBONES: dict[str, str] = {
    AUTO: "picked by device and image size (docs/benchmarks.md)",
    "resnet18": "ResNet-18, small-image stem at 64 px or less",
    "resnet34": "ResNet-34, small-image stem at 64 px or less",
    "resnet50": "ResNet-50, small-image stem at 64 px or less",
    "resnet18-std": "ResNet-18 with the ImageNet stem (fast on a CPU)",
    "resnet34-std": "ResNet-34 with the ImageNet stem",
    "resnet50-std": "ResNet-50 with the ImageNet stem",
    "resnet18-w16": "ResNet-18 at a quarter width, small-image stem (native size on a CPU)",
    "resnet18-w32": "ResNet-18 at half width, small-image stem",
    "vit-tiny": "ViT-Tiny (also vit-tiny-pN for an N px patch)",
    "vit-small": "ViT-Small (also vit-small-pN for an N px patch)",
    "efficientnet-lite0": "EfficientNet-Lite0, can start from ImageNet weights",
}

# Backbones whose ImageNet weights ship in an installed pip package (no download at run time).
IMAGENET_BACKBONES: tuple[str, ...] = ("efficientnet-lite0",)

INITS: dict[str, str] = {
    AUTO: "ImageNet weights where the backbone has them, else from scratch",
    "imagenet": "ImageNet weights (efficientnet-lite0 only)",
    "scratch": "From scratch (random weights)",
    "patches": "From scratch, first layer from a dictionary of your images' patches",
}


def method_names() -> list[str]:
    return list(METHODS)


def backbone_names() -> list[str]:
    """Every backbone name a user can pick, `auto` first."""
    return list(BACKBONES)


def init_names() -> list[str]:
    """Pretraining starting points, `auto` first (the default)."""
    return list(INITS)


def init_problem(backbone: str, init: str) -> str | None:
    """Why `init` cannot start `backbone`, or None when it can (`auto` may pick a backbone with weights)."""
    if init not in INITS:
        return f"unknown starting point {init!r}; choose one of: {', '.join(INITS)}"
    if init == "imagenet" and backbone != AUTO and backbone not in IMAGENET_BACKBONES:
        return (f"{backbone} has no ImageNet weights; pick {' or '.join(IMAGENET_BACKBONES)}, "
                "or start from scratch")
    return None
