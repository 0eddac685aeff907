"""Rotation prediction (Gidaris et al., 2018), the classic pretext-task baseline: every image is shown
at 0, 90, 180 and 270 degrees and a linear classifier on the backbone features names the rotation."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslapp.models.backbones import Backbone
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, float32

N_ROTATIONS = 4


def rotate_batch(x: Tensor) -> tuple[Tensor, Tensor]:
    """(B, C, H, W) -> the 4B images rotated by k * 90 degrees (k-major) and their labels k."""
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(N_ROTATIONS)])
    labels = torch.arange(N_ROTATIONS, device=x.device).repeat_interleave(x.shape[0])
    return rotated, labels


class RotationPrediction(SSLMethod):
    name = "rotation"
    defaults: dict[str, Any] = {}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        self.classifier = nn.Linear(backbone.dim, N_ROTATIONS)

    def view_spec(self, train_size: int) -> ViewSpec:
        # Light augmentation only: flips are fine (they do not change which way is up); no colour
        # jitter, which the original work did not use either.
        return ViewSpec(n_global=1, global_size=train_size, global_scale=(0.5, 1.0), color=False,
                        blur=(0.0,), solarize=(0.0,))

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        rotated, labels = rotate_batch(views[0])
        logits = self.classifier(self.backbone(rotated)).float()
        with float32(logits):
            return F.cross_entropy(logits, labels)

    def optimizer_config(self) -> dict[str, Any]:
        cfg = super().optimizer_config()
        return cfg if cfg["name"] == "adamw" else {**cfg, "lr": 0.1}
