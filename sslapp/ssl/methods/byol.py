"""BYOL (Grill et al., 2020): an online network predicts the projection of a momentum (EMA) target
of the other view, with a negative cosine similarity loss and no negatives."""

from __future__ import annotations

import copy
from typing import Any

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import Tensor

from sslapp.ssl.backbones import Backbone
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, blur_probs, float32


class BYOL(SSLMethod):
    name = "byol"
    defaults = {"hidden_dim": 1024, "output_dim": 256, "momentum_start": 0.99, "momentum_end": 1.0}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        hp = self.hparams
        self.projection_head = BYOLProjectionHead(backbone.dim, hp["hidden_dim"], hp["output_dim"])
        self.prediction_head = BYOLPredictionHead(hp["output_dim"], hp["hidden_dim"], hp["output_dim"])
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)
        self.momentum = hp["momentum_start"]
        self.criterion = NegativeCosineSimilarity()

    def view_spec(self, train_size: int) -> ViewSpec:
        # BYOL's asymmetric augmentation: always blur view 1, rarely view 2; solarize only view 2.
        return ViewSpec(n_global=2, global_size=train_size, global_scale=(0.2, 1.0),
                        blur=blur_probs(train_size, 1.0, 0.1),
                        solarize=(0.0, 0.2))

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        x = torch.cat(views[:2])
        p0, p1 = self.prediction_head(self.projection_head(self.backbone(x))).float().chunk(2)
        with torch.no_grad():
            z0, z1 = self.projection_head_momentum(self.backbone_momentum(x)).float().chunk(2)
        with float32(p0):
            return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.momentum = cosine_schedule(step, total_steps, self.hparams["momentum_start"], self.hparams["momentum_end"])
        update_momentum(self.backbone, self.backbone_momentum, m=self.momentum)
        update_momentum(self.projection_head, self.projection_head_momentum, m=self.momentum)
