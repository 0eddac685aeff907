"""MoCo v3 (Chen, Xie & He, 2021): a momentum encoder, projection + prediction heads, and a symmetric
contrastive loss between the online predictions of one view and the momentum projections of the other.

The contrastive term is lightly's NTXentLoss at temperature 0.2 (gathered across ranks under DDP),
which also counts same-side negatives; MoCo v3's own loss uses only the keys as negatives.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import BYOLPredictionHead, MoCoProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import Tensor

from sslapp.ssl.backbones import Backbone
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, blur_probs, float32, is_vit


class MoCoV3(SSLMethod):
    name = "mocov3"
    defaults = {"hidden_dim": 1024, "output_dim": 256, "temperature": 0.2, "momentum_start": 0.99,
                "momentum_end": 1.0, "gather_distributed": True}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        hp = self.hparams
        # 3-layer projector with BN on every layer, 2-layer predictor without a last BN, as in the paper.
        self.projection_head = MoCoProjectionHead(backbone.dim, hp["hidden_dim"], hp["output_dim"],
                                                  num_layers=3, batch_norm=True)
        self.prediction_head = BYOLPredictionHead(hp["output_dim"], hp["hidden_dim"], hp["output_dim"])
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)
        self.momentum = hp["momentum_start"]
        self.criterion = NTXentLoss(temperature=hp["temperature"], gather_distributed=hp["gather_distributed"])

    def view_spec(self, train_size: int) -> ViewSpec:
        return ViewSpec(n_global=2, global_size=train_size, global_scale=(0.2, 1.0),
                        blur=blur_probs(train_size, 1.0, 0.1),
                        solarize=(0.0, 0.2))

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        x = torch.cat(views[:2])
        q0, q1 = self.prediction_head(self.projection_head(self.backbone(x))).float().chunk(2)
        with torch.no_grad():
            k0, k1 = self.projection_head_momentum(self.backbone_momentum(x)).float().chunk(2)
        with float32(q0):
            return 0.5 * (self.criterion(q0, k1) + self.criterion(q1, k0))

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.momentum = cosine_schedule(step, total_steps, self.hparams["momentum_start"], self.hparams["momentum_end"])
        update_momentum(self.backbone, self.backbone_momentum, m=self.momentum)
        update_momentum(self.projection_head, self.projection_head_momentum, m=self.momentum)

    def optimizer_config(self) -> dict[str, Any]:
        if is_vit(self.backbone_info):
            return {"name": "adamw", "lr": 1.5e-4, "weight_decay": 0.1, "warmup_epochs": 1}
        return {"name": "sgd", "lr": 0.06, "momentum": 0.9, "weight_decay": 5e-4, "warmup_epochs": 0}
