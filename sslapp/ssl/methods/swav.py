"""SwAV (Caron et al., 2020): swapped prediction of Sinkhorn cluster assignments over learnable
prototypes, with multi-crop (2 global + `n_local` small crops).

Prototypes are L2-normalised before every step and frozen for the first `freeze_prototypes_epochs`
epochs, as in the paper. The Sinkhorn codes are computed over all ranks under DDP. No feature queue:
with small batches and few prototypes the plain version is stable on small datasets.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lightly.loss import SwaVLoss
from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes
from torch import Tensor

from sslapp.models.backbones import Backbone
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, blur_probs, float32, is_vit, local_crop_size


class SwAV(SSLMethod):
    name = "swav"
    defaults = {"hidden_dim": 1024, "output_dim": 128, "n_prototypes": 512, "n_local": 4,
                "temperature": 0.1, "sinkhorn_epsilon": 0.05, "freeze_prototypes_epochs": 1,
                "gather_distributed": True}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        hp = self.hparams
        self.projection_head = SwaVProjectionHead(backbone.dim, hp["hidden_dim"], hp["output_dim"])
        self.prototypes = SwaVPrototypes(hp["output_dim"], hp["n_prototypes"])
        self.criterion = SwaVLoss(temperature=hp["temperature"], sinkhorn_epsilon=hp["sinkhorn_epsilon"],
                                  sinkhorn_gather_distributed=hp["gather_distributed"])
        self.patch = backbone.module.patch_size if is_vit(backbone) else 1

    def view_spec(self, train_size: int) -> ViewSpec:
        n_local = self.hparams["n_local"]
        return ViewSpec(n_global=2, global_size=train_size, global_scale=(0.14, 1.0), n_local=n_local,
                        local_size=local_crop_size(train_size, self.patch) if n_local else 0,
                        local_scale=(0.05, 0.14), blur=blur_probs(train_size, 0.5, 0.5),
                        local_blur=blur_probs(train_size, 0.5)[0])

    def _logits(self, x: Tensor) -> Tensor:
        z = self.projection_head(self.backbone(x)).float()
        with float32(z):
            return self.prototypes(F.normalize(z, dim=1))

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        with torch.no_grad():
            self.prototypes.normalize()
        n = views[0].shape[0]
        high = list(self._logits(torch.cat(views[:2])).split(n))
        local = views[2:]
        low = list(self._logits(torch.cat(local)).split(n)) if local else []
        with float32(high[0]):
            return self.criterion(high, low)

    def on_after_backward(self, epoch: int) -> None:
        if epoch < self.hparams["freeze_prototypes_epochs"]:
            for p in self.prototypes.parameters():
                p.grad = None

    def optimizer_config(self) -> dict[str, Any]:
        if is_vit(self.backbone_info):
            return {"name": "adamw", "lr": 5e-4, "weight_decay": 0.05, "warmup_epochs": 1}
        return {"name": "sgd", "lr": 0.06, "momentum": 0.9, "weight_decay": 1e-6, "warmup_epochs": 0}
