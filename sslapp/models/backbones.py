"""torchvision backbones that map a normalised image batch (B, 3, S, S) to features (B, D).

ResNets get a small-image stem (3x3 conv, no max-pool) for inputs of 64 px or less, as in
SimCLR's CIFAR setup; `-std` forces the ImageNet stem, which is ~10x cheaper at 32 px on a CPU.
ViTs come from torchvision's VisionTransformer (so MAE can reuse lightly's masked wrapper) with a
forward that accepts any multiple of the patch size, interpolating the position embedding, so DINO and
SwAV can feed small local crops through the same network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD
from sslapp.models.registry import BACKBONES

SMALL_STEM_MAX_SIZE = 64
_FAMILY = {name: entry.defaults for name, entry in BACKBONES.items()}
VIT_SPECS = {  # name: (hidden_dim, layers, heads, mlp_dim)
    n: (d["hidden_dim"], d["layers"], d["heads"], d["mlp_dim"]) for n, d in _FAMILY.items() if d["family"] == "vit"}
RESNETS = tuple(n for n, d in _FAMILY.items() if d["family"] == "resnet" and "-" not in n)
# ResNet-18 at a quarter and a half of its width (timm's ResNet with its `channels`), small-image stem:
# cheap enough on a CPU to train at the images' own size instead of downsampling 4x in the stem.
NARROW = {n: d["width"] for n, d in _FAMILY.items() if "width" in d}
# ImageNet-pretrained networks whose weights ship inside a pip package (sslapp.models.weights); timm builds them.
PRETRAINED = {n: (d["timm_name"], d["mean"], d["std"]) for n, d in _FAMILY.items() if d["family"] == "timm"}
PATCHES = "patches"  # the whitened-patch dictionary encoder (sslapp.models.patches), fitted, not trained
PIXELS = "pixels"  # PCA of downsampled pixels (sslapp.models.pixels), fitted, not trained
MFCC = "mfcc"  # MFCC statistics of a log-mel picture (sslapp.models.mfcc), fitted, not trained
FRAMES = "frames"  # 1-D convolutions over a log-mel picture's frames (sslapp.models.frames): CPC, wav2vec


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


class ViT(torchvision.models.VisionTransformer):
    """torchvision's ViT whose forward takes any square size that is a multiple of the patch size.

    State-dict keys are torchvision's, so weights stay interchangeable with the stock model.
    """

    def pos_embedding_for(self, n_patches: int) -> torch.Tensor:
        pos = self.encoder.pos_embedding
        n_trained = pos.shape[1] - 1
        if n_patches == n_trained:
            return pos
        side, new_side = math.isqrt(n_trained), math.isqrt(n_patches)
        grid = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(new_side, new_side), mode="bicubic", align_corners=False)
        return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, n_patches, -1)], dim=1)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> the encoder's output tokens (B, 1 + (S / patch)^2, D), class token first."""
        h, w = x.shape[-2:]
        if h != w or h % self.patch_size:
            raise ValueError(f"ViT input must be square and a multiple of {self.patch_size} px, got {h}x{w}")
        tokens = self.conv_proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.pos_embedding_for(tokens.shape[1] - 1)
        enc = self.encoder
        return enc.ln(enc.layers(enc.dropout(tokens)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.tokens(x)[:, 0])


class TimmNet(nn.Module):
    """A timm network fed sslapp's ImageNet-normalised input, converted to the normalisation its
    weights were trained with (EfficientNet-Lite's TF weights expect [-1, 1]), so views, encoders
    and exports keep one preprocessing. State-dict keys are timm's under `net.`."""

    def __init__(self, timm_name: str, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        import timm

        self.net = timm.create_model(timm_name, pretrained=False, num_classes=0)
        scale = torch.tensor(IMAGENET_STD) / torch.tensor(std)
        shift = (torch.tensor(IMAGENET_MEAN) - torch.tensor(mean)) / torch.tensor(std)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * self.scale + self.shift)


def parse_vit_name(name: str) -> tuple[str, int | None] | None:
    """"vit-tiny" -> ("vit-tiny", None); "vit-tiny-p4" -> ("vit-tiny", 4) (explicit patch side); else None."""
    base, _, patch = name.rpartition("-p")
    if base in VIT_SPECS and patch.isdigit() and int(patch) > 0:
        return base, int(patch)
    return (name, None) if name in VIT_SPECS else None


def is_backbone_name(name: str) -> bool:
    """Whether `build_backbone` knows `name` (one of BACKBONES, or a ViT with a patch suffix)."""
    return name in BACKBONES or parse_vit_name(name) is not None  # fitted encoders (patches, pixels) train no weights


def build_backbone(name: str, image_size: int, **options) -> Backbone:
    """The backbone called `name` for square inputs of `image_size` px, randomly initialised.

    ViT names take an optional patch suffix (`vit-tiny-p4`); by default `vit_patch_size` picks it.
    Pretrained networks start random here too: `sslapp.models.weights.init_backbone` loads weights.
    `options` size the fitted patch encoder (`sslapp.models.patches.PatchCodes`).
    """
    if name == PIXELS:
        from sslapp.models.pixels import PixelPCA

        module = PixelPCA(**options)
        return Backbone(module, module.dim, name, image_size)
    if name == FRAMES:
        from sslapp.models.frames import FrameEncoder

        module = FrameEncoder(mels=image_size, **options)
        return Backbone(module, module.dim, name, image_size)
    if name == MFCC:
        from sslapp.models.mfcc import MFCCStats

        module = MFCCStats(**options)
        return Backbone(module, module.dim, name, image_size)
    if name == PATCHES:
        from sslapp.models.patches import PatchCodes

        module = PatchCodes(**options)
        return Backbone(module, module.dim, name, image_size)
    if name in PRETRAINED:
        timm_name, mean, std = PRETRAINED[name]
        module = TimmNet(timm_name, mean, std)
        return Backbone(module, module.net.num_features, name, image_size)
    vit_name = parse_vit_name(name)
    if vit_name is not None:
        base, patch = vit_name
        patch = patch or vit_patch_size(image_size)
        if image_size % patch:
            raise ValueError(f"{name}: image size {image_size} px is not a multiple of the patch size {patch}")
        hidden, layers, heads, mlp = VIT_SPECS[base]
        vit = ViT(
            image_size=image_size, patch_size=patch, num_layers=layers,
            num_heads=heads, hidden_dim=hidden, mlp_dim=mlp)
        vit.heads = nn.Identity()
        return Backbone(vit, hidden, name, image_size)
    if name in NARROW:
        net = _narrow_resnet(NARROW[name], image_size)
        return Backbone(net, net.num_features, name, image_size)
    base = name.removesuffix("-std")
    if base not in RESNETS:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)} (ViTs also as "
                         f"e.g. vit-tiny-p4 for a 4 px patch) or auto")
    net = getattr(torchvision.models, base)(weights=None)
    if not name.endswith("-std") and image_size <= SMALL_STEM_MAX_SIZE:
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return Backbone(net, dim, name, image_size)


def _narrow_resnet(width: int, image_size: int) -> nn.Module:
    """ResNet-18 with stages of width, 2x, 4x and 8x channels; a 3x3 stride-1 stem up to 64 px, timm's
    deep stem (three 3x3 convolutions, stride 4 with its max-pool) above."""
    from timm.models.resnet import BasicBlock, ResNet

    # timm sizes the stem's output by `stem_width` only for its deep stem (2x stem_width channels)
    net = ResNet(BasicBlock, [2, 2, 2, 2], num_classes=0, stem_type="deep", stem_width=width // 2,
                 channels=(width, 2 * width, 4 * width, 8 * width))
    if image_size <= SMALL_STEM_MAX_SIZE:
        net.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    return net


def feature_map(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The backbone's last spatial features (B, C, h, w) before pooling, for methods that predict
    per-pixel targets (colourisation): a ResNet's last stage, a ViT's patch tokens on their grid."""
    if isinstance(module, ViT):
        patches = module.tokens(x)[:, 1:]
        side = math.isqrt(patches.shape[1])
        return patches.transpose(1, 2).reshape(x.shape[0], -1, side, side)
    if isinstance(module, TimmNet):
        return module.net.forward_features(x * module.scale + module.shift)
    if isinstance(module, torchvision.models.ResNet):
        x = module.maxpool(module.relu(module.bn1(module.conv1(x))))
        return module.layer4(module.layer3(module.layer2(module.layer1(x))))
    if hasattr(module, "forward_features"):  # timm's ResNet (the narrow ResNet-18s)
        return module.forward_features(x)
    raise ValueError(f"{type(module).__name__} has no spatial feature map")
