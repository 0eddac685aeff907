"""Colourisation (Zhang, Isola & Efros, 2016, "Colorful Image Colorization") as a pretext task: the
backbone sees each image in grey (its CIE Lab lightness L alone, as an sRGB grey in all three channels)
and a light decoder on the backbone's last feature map predicts the colour (Lab's a and b) at a quarter
of the image's resolution. The backbone alone is kept and is applied to colour images.

Bins, not a regression: a colour is multimodal (a grey car may be red or blue), and an L2 or smooth-L1
regression on ab learns the mean of the modes, a brownish grey, after which its gradient says little.
As in the paper the ab plane is cut into cells of 10 and the decoder gives a distribution over the cells
any sRGB colour falls in (`ab_bins`: 2xx of them), trained with cross-entropy against the true colour
soft-encoded on its 5 nearest cells (Gaussian weights, sigma 5). The paper's class rebalancing, which
weighs rare saturated colours up so that its pictures look vivid, is left out: the app never shows
the colourised images, only the encoder is kept.

Grey images (red, green and blue equal) hold no colour to predict; the method refuses them before a run
trains (`data_refusal`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslapp.models.backbones import Backbone, feature_map
from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD, imagenet_normalise
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, float32

# linear sRGB -> CIE XYZ (D65), as kornia and skimage have it; the white point is where (1, 1, 1) goes,
# so that every grey has a = b = 0 exactly
RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
LAB_EPSILON = (6 / 29) ** 3  # below it Lab's cube root turns into a line
BIN_SIZE = 10.0  # ab cells of the paper
NEIGHBOURS, SIGMA = 5, 5.0  # the paper's soft encoding of the true colour
MAX_TARGET = 16  # side of the predicted colour map: a quarter of the image, at most 16 px (memory at 224 px)


def srgb_to_linear(x: Tensor) -> Tensor:
    return torch.where(x > 0.04045, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)


def linear_to_srgb(x: Tensor) -> Tensor:
    return torch.where(x > 0.0031308, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, 12.92 * x)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> CIE Lab under D65: L in [0, 100], a and b within about +-110."""
    matrix = rgb.new_tensor(RGB_TO_XYZ)
    xyz = torch.einsum("ij,bjhw->bihw", matrix / matrix.sum(1, keepdim=True), srgb_to_linear(rgb.clamp(0, 1)))
    cube_root = xyz.clamp(min=LAB_EPSILON) ** (1 / 3)
    f = torch.where(xyz > LAB_EPSILON, cube_root, xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def grey_of(rgb: Tensor) -> Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 1, H, W) the sRGB grey of the same Lab lightness (a = b = 0)."""
    luminance = torch.einsum("j,bjhw->bhw", rgb.new_tensor(RGB_TO_XYZ[1]), srgb_to_linear(rgb.clamp(0, 1)))
    return linear_to_srgb(luminance).unsqueeze(1)


@lru_cache(maxsize=2)
def ab_bins(bin_size: float = BIN_SIZE, levels: int = 32) -> Tensor:
    """Centres (Q, 2) of the ab cells that some sRGB colour falls in (a grid of `levels`^3 colours)."""
    v = torch.linspace(0, 1, levels, dtype=torch.float64)
    rgb = torch.cartesian_prod(v, v, v).T.reshape(1, 3, -1, 1)
    ab = rgb_to_lab(rgb)[0, 1:, :, 0].T
    return (torch.unique(torch.round(ab / bin_size), dim=0) * bin_size).float()


def soft_encode(ab: Tensor, bins: Tensor) -> tuple[Tensor, Tensor]:
    """(N, 2) colours -> the indices (N, k) of their k nearest bins and their Gaussian weights (N, k),
    which sum to 1."""
    d2, index = torch.cdist(ab, bins).pow(2).topk(NEIGHBOURS, dim=1, largest=False)
    return index, torch.softmax(-d2 / (2 * SIGMA**2), dim=1)


def grey_refusal(images: Any) -> str | None:
    """Why colourisation cannot learn from these uint8 images (they are grey), or None."""
    from sslapp.modalities.image.prior import is_grayscale

    if not is_grayscale(images):
        return None
    return ("colorization learns by predicting each image's colours from its grey version, and these images "
            "are grey (red, green and blue equal): there is no colour to learn. Choose another method, e.g. "
            "rotation, jigsaw or simclr.")


class Colorization(SSLMethod):
    name = "colorization"
    defaults: dict[str, Any] = {"hidden_dim": 128}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        hidden = int(self.hparams["hidden_dim"])
        self.register_buffer("bins", ab_bins().clone())
        self.target_size = max(1, min(MAX_TARGET, backbone.image_size // 4))
        self.reduce = nn.Sequential(nn.Conv2d(backbone.dim, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                    nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, bias=False),
                                     nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
                                     nn.Conv2d(hidden, len(self.bins), 1))

    @classmethod
    def data_refusal(cls, images: Any) -> str | None:
        return grey_refusal(images)

    def view_spec(self, train_size: int) -> ViewSpec:
        # crops and flips only: colour is the target, so no colour jitter or random grayscale
        return ViewSpec(n_global=1, global_size=train_size, global_scale=(0.5, 1.0), color=False,
                        blur=(0.0,), solarize=(0.0,))

    def inputs_and_targets(self, views: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised views -> the backbone's grey input (B, 3, S, S) and the true ab (B, 2, t, t)."""
        with torch.no_grad(), float32(views):
            std = views.new_tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
            mean = views.new_tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
            rgb = (views.float() * std + mean).clamp(0, 1)
            grey = imagenet_normalise(grey_of(rgb).expand(-1, 3, -1, -1))
            ab = F.adaptive_avg_pool2d(rgb_to_lab(rgb)[:, 1:], self.target_size)
        return grey.to(views.dtype), ab

    def logits(self, grey: Tensor) -> Tensor:
        """The decoder's (B, Q, t, t) scores of the colour bins, from the backbone's last feature map."""
        h = self.reduce(feature_map(self.backbone, grey))
        if h.shape[-1] != self.target_size:
            h = F.interpolate(h, size=(self.target_size,) * 2, mode="bilinear", align_corners=False)
        return self.decoder(h)

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        grey, ab = self.inputs_and_targets(views[0])
        logits = self.logits(grey)
        with float32(logits):
            scores = logits.float().permute(0, 2, 3, 1).reshape(-1, len(self.bins))
            index, weight = soft_encode(ab.permute(0, 2, 3, 1).reshape(-1, 2), self.bins)
            return -(weight * F.log_softmax(scores, dim=1).gather(1, index)).sum(1).mean()
