"""torchvision backbones that map a normalised image batch (B, 3, S, S) to features (B, D).

ResNets get a small-image stem (3x3 conv, no max-pool) for inputs of 64 px or less, as in
SimCLR's CIFAR setup; `-std` forces the ImageNet stem, which is ~10x cheaper at 32 px on a CPU.
ViTs come from torchvision's VisionTransformer so MAE can reuse lightly's masked wrapper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision
from torch import nn

SMALL_STEM_MAX_SIZE = 64
VIT_SPECS = {  # name: (hidden_dim, layers, heads, mlp_dim)
    "vit-tiny": (192, 12, 3, 768),
    "vit-small": (384, 12, 6, 1536),
}
RESNETS = ("resnet18", "resnet34", "resnet50")
BACKBONES = (*RESNETS, *(f"{r}-std" for r in RESNETS), *VIT_SPECS)


@dataclass
class Backbone:
    module: nn.Module
    dim: int
    name: str
    image_size: int


def vit_patch_size(image_size: int) -> int:
    """Patch side giving an 8x8 (small images) or 14x14 (224 px) grid."""
    if image_size % 16 == 0 and image_size >= 128:
        return 16
    for patch in (8, 4, 2):
        if image_size % patch == 0 and image_size // patch >= 8:
            return patch
    raise ValueError(f"no ViT patch size fits {image_size} px; use a multiple of 8 px of at least 16")


def build_backbone(name: str, image_size: int) -> Backbone:
    """The backbone called `name` for square inputs of `image_size` px, randomly initialised."""
    if name in VIT_SPECS:
        hidden, layers, heads, mlp = VIT_SPECS[name]
        vit = torchvision.models.VisionTransformer(
            image_size=image_size, patch_size=vit_patch_size(image_size), num_layers=layers,
            num_heads=heads, hidden_dim=hidden, mlp_dim=mlp)
        vit.heads = nn.Identity()
        return Backbone(vit, hidden, name, image_size)
    base = name.removesuffix("-std")
    if base not in RESNETS:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)} or auto")
    net = getattr(torchvision.models, base)(weights=None)
    if not name.endswith("-std") and image_size <= SMALL_STEM_MAX_SIZE:
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return Backbone(net, dim, name, image_size)


