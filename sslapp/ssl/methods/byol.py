"""BYOL (Grill et al., 2020): an online network predicts the projection of a momentum (EMA) target
of the other view, with a negative cosine similarity loss and no negatives."""

from __future__ import annotations

from typing import Any

from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead

from sslapp.models.backbones import Backbone
from sslapp.ssl.methods.momentum import TwinMomentumMethod


class BYOL(TwinMomentumMethod):
    name = "byol"
    defaults = {"hidden_dim": 1024, "output_dim": 256, "momentum_start": 0.99, "momentum_end": 1.0}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        hp = self.hparams
        self.projection_head = BYOLProjectionHead(backbone.dim, hp["hidden_dim"], hp["output_dim"])
        self.prediction_head = BYOLPredictionHead(hp["output_dim"], hp["hidden_dim"], hp["output_dim"])
        self.add_momentum_teacher()
        self.criterion = NegativeCosineSimilarity()
