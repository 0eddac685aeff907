"""MoCo v3 (Chen, Xie & He, 2021): a momentum encoder, projection + prediction heads, and a symmetric
contrastive loss between the online predictions of one view and the momentum projections of the other.

The contrastive term is lightly's NTXentLoss at temperature 0.2 (gathered across ranks under DDP),
which also counts same-side negatives; MoCo v3's own loss uses only the keys as negatives.
"""

from __future__ import annotations

from typing import Any

from lightly.loss import NTXentLoss
from lightly.models.modules import BYOLPredictionHead, MoCoProjectionHead

from sslapp.models.backbones import Backbone
from sslapp.ssl.methods.base import is_vit
from sslapp.ssl.methods.momentum import TwinMomentumMethod


class MoCoV3(TwinMomentumMethod):
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
        self.add_momentum_teacher()
        self.criterion = NTXentLoss(temperature=hp["temperature"], gather_distributed=hp["gather_distributed"])

    def optimizer_config(self) -> dict[str, Any]:
        if is_vit(self.backbone_info):
            return {"name": "adamw", "lr": 1.5e-4, "weight_decay": 0.1, "warmup_epochs": 1}
        return {"name": "sgd", "lr": 0.06, "momentum": 0.9, "weight_decay": 5e-4, "warmup_epochs": 0}
