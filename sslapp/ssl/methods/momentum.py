"""The momentum (EMA) teacher shared by BYOL, MoCo v3 and DINO, built on lightly's helpers.

`TwinMomentumMethod` is the BYOL / MoCo v3 shape: an online backbone, projection and prediction
head against momentum copies of the backbone and projection head, with a symmetric two-view loss.
The teacher's momentum follows lightly's cosine schedule from `momentum_start` to `momentum_end`
over the run's steps; it is a function of the step, so a resumed run updates exactly as before.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import Tensor, nn

from sslapp.ssl.methods.base import SSLMethod, ViewSpec, blur_probs, float32


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy that gets no gradients: the teacher, moved only by `momentum_update`."""
    twin = copy.deepcopy(module)
    deactivate_requires_grad(twin)
    return twin


def momentum_update(pairs: Iterable[tuple[nn.Module, nn.Module]], step: int, total_steps: int,
                    start: float, end: float) -> float:
    """Move each (online, teacher) pair's teacher towards its online module; returns the momentum used."""
    m = cosine_schedule(step, total_steps, start, end)
    for online, teacher in pairs:
        update_momentum(online, teacher, m=m)
    return m


class TwinMomentumMethod(SSLMethod):
    """BYOL and MoCo v3: subclasses build `projection_head` and `prediction_head`, then call
    `add_momentum_teacher()`, then set `criterion` (called as ``criterion(online, teacher)``)."""

    projection_head: nn.Module
    prediction_head: nn.Module
    criterion: nn.Module

    def add_momentum_teacher(self) -> None:
        self.backbone_momentum = frozen_copy(self.backbone)
        self.projection_head_momentum = frozen_copy(self.projection_head)
        self.momentum = self.hparams["momentum_start"]

    def view_spec(self, train_size: int) -> ViewSpec:
        # BYOL's asymmetric augmentation: always blur view 1, rarely view 2; solarize only view 2.
        return ViewSpec(n_global=2, global_size=train_size, global_scale=(0.2, 1.0),
                        blur=blur_probs(train_size, 1.0, 0.1), solarize=(0.0, 0.2))

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        x = torch.cat(views[:2])
        p0, p1 = self.prediction_head(self.projection_head(self.backbone(x))).float().chunk(2)
        with torch.no_grad():
            z0, z1 = self.projection_head_momentum(self.backbone_momentum(x)).float().chunk(2)
        with float32(p0):
            return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.momentum = momentum_update(
            [(self.backbone, self.backbone_momentum), (self.projection_head, self.projection_head_momentum)],
            step, total_steps, self.hparams["momentum_start"], self.hparams["momentum_end"])
