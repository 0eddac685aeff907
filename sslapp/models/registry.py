"""The backbones and starting points a pretraining run can pick, by name (torch-free).

`sslapp.models.backbones.build_backbone` builds every entry of BACKBONES; `sslapp.models.weights`
loads the starting point. Pages and the CLI list these without importing torch.
"""

from __future__ import annotations

from sslapp.registry import Entry, Registry

AUTO = "auto"
_BUILD = "sslapp.models.backbones:build_backbone"

BACKBONES = Registry("backbone", [
    Entry("resnet18", "ResNet-18, small-image stem at 64 px or less", _BUILD, {"family": "resnet"}),
    Entry("resnet34", "ResNet-34, small-image stem at 64 px or less", _BUILD, {"family": "resnet"}),
    Entry("resnet50", "ResNet-50, small-image stem at 64 px or less", _BUILD, {"family": "resnet"}),
    Entry("resnet18-std", "ResNet-18 with the ImageNet stem (fast on a CPU)", _BUILD, {"family": "resnet"}),
    Entry("resnet34-std", "ResNet-34 with the ImageNet stem", _BUILD, {"family": "resnet"}),
    Entry("resnet50-std", "ResNet-50 with the ImageNet stem", _BUILD, {"family": "resnet"}),
    Entry("resnet18-w16", "ResNet-18 at a quarter width, small-image stem (native size on a CPU)", _BUILD,
          {"family": "resnet", "width": 16}),
    Entry("resnet18-w32", "ResNet-18 at half width, small-image stem", _BUILD, {"family": "resnet", "width": 32}),
    Entry("vit-tiny", "ViT-Tiny (also vit-tiny-pN for an N px patch)", _BUILD,
          {"family": "vit", "hidden_dim": 192, "layers": 12, "heads": 3, "mlp_dim": 768}),
    Entry("vit-small", "ViT-Small (also vit-small-pN for an N px patch)", _BUILD,
          {"family": "vit", "hidden_dim": 384, "layers": 12, "heads": 6, "mlp_dim": 1536}),
    Entry("efficientnet-lite0", "EfficientNet-Lite0, can start from ImageNet weights", _BUILD,
          {"family": "timm", "timm_name": "tf_efficientnet_lite0", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
           "imagenet": True}),
    Entry("frames", "1-D convolutions over the frames of a sound's log-mel picture (CPC, wav2vec; sounds only)",
          _BUILD, {"family": "frames"}),
])

INITS = Registry("starting point", [
    Entry(AUTO, "ImageNet weights where the backbone has them, else from scratch"),
    Entry("imagenet", "ImageNet weights (efficientnet-lite0 only)", "sslapp.models.weights:init_backbone"),
    Entry("scratch", "From scratch (random weights)", "sslapp.models.weights:init_backbone"),
    Entry("patches", "From scratch, first layer from a dictionary of your images' patches",
          "sslapp.models.weights:init_backbone"),
])

# Backbones whose ImageNet weights ship in an installed pip package (no download at run time).
IMAGENET_BACKBONES: tuple[str, ...] = tuple(n for n, e in BACKBONES.items() if e.defaults.get("imagenet"))


def init_problem(backbone: str, init: str) -> str | None:
    """Why `init` cannot start `backbone`, or None when it can (`auto` may pick a backbone with weights)."""
    if init not in INITS:
        return f"unknown starting point {init!r}; choose one of: {', '.join(INITS)}"
    if init == "imagenet" and backbone != AUTO and backbone not in IMAGENET_BACKBONES:
        return (f"{backbone} has no ImageNet weights; pick {' or '.join(IMAGENET_BACKBONES)}, "
                "or start from scratch")
    return None
