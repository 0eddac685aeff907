"""SimCLR: two views, a 2-layer projection head and the NT-Xent loss (Chen et al., 2020)."""

from __future__ import annotations

from typing import Any

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import Tensor

from sslapp.models.backbones import Backbone
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, float32


class SimCLR(SSLMethod):
    name = "simclr"
    defaults = {"hidden_dim": 512, "output_dim": 128, "temperature": 0.2, "gather_distributed": True}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        hp = self.hparams
        self.projection_head = SimCLRProjectionHead(backbone.dim, hp["hidden_dim"], hp["output_dim"])
        self.criterion = NTXentLoss(temperature=hp["temperature"], gather_distributed=hp["gather_distributed"])

    def view_spec(self, train_size: int) -> ViewSpec:
        return ViewSpec(n_global=2, global_size=train_size, global_scale=(0.2, 1.0))

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        x0, x1 = views[0], views[1]
        z = self.projection_head(self.backbone(torch.cat([x0, x1]))).float()
        z0, z1 = z.chunk(2)
        with float32(z0):
            return self.criterion(z0, z1)

