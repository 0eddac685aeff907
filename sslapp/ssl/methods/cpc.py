"""Contrastive predictive coding (van den Oord et al., 2018) on sounds' log-mel pictures: the frame encoder
(`sslapp.models.frames`) gives one vector z_t per frame, a GRU summarises z_1..z_t into a context c_t, and a
linear map per step k predicts z_{t+k} from c_t. InfoNCE (`CPCLoss`) makes the prediction pick the true
z_{t+k} among the same moment of the other clips of the batch (or, with negatives="clip", the other moments
of the same clip: on fsdd in 3 minutes no better, docs/benchmarks.md). The frame encoder is what is kept."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslapp.models.backbones import Backbone
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, float32


class CPCLoss(nn.Module):
    """InfoNCE of CPC: for each step k, the prediction from c_t against candidates for z_{t+k}, averaged over t
    and k. `negatives`: "batch", the same moment of every clip in the batch (the clip's own is the positive),
    or "clip", every later moment of the same clip (the paper's within-sequence sampling: the voice and the
    room are the same in all of them, so only what is said tells them apart)."""

    def __init__(self, negatives: str = "batch"):
        super().__init__()
        if negatives not in ("batch", "clip"):
            raise ValueError(f"negatives must be 'batch' or 'clip', not {negatives!r}")
        self.negatives = negatives

    def forward(self, predictions: list[Tensor], z: Tensor) -> Tensor:
        """predictions[k - 1]: (B, T - k, D) predicted z_{t+k}; z: (B, T, D) the frames' vectors."""
        b = z.shape[0]
        losses = []
        for k, pred in enumerate(predictions, start=1):
            target = z[:, k:]  # (B, T - k, D)
            if self.negatives == "batch":
                logits = torch.einsum("btd,ctd->tbc", pred, target)  # (T - k, B, B): clip b's prediction vs clip c
                labels = torch.arange(b, device=z.device).expand(logits.shape[0], b)
            else:
                logits = torch.einsum("btd,bsd->bts", pred, target)  # (B, T - k, T - k): moment t vs moment s
                labels = torch.arange(logits.shape[1], device=z.device).expand(b, -1)
            losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)))
        return torch.stack(losses).mean()


def frame_backbone(backbone: Backbone, method: str) -> None:
    """Refuse a backbone without per-frame vectors: these objectives predict or mask frames."""
    if not hasattr(backbone.module, "frames"):
        raise ValueError(f"{method} needs the frames backbone (--backbone frames or auto), not {backbone.name}")


class CPC(SSLMethod):
    name = "cpc"
    defaults = {"context_dim": 256, "steps": 4, "negatives": "batch"}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        frame_backbone(backbone, "CPC")
        width, hp = backbone.module.width, self.hparams
        self.context = nn.GRU(width, hp["context_dim"], batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(hp["context_dim"], width) for _ in range(int(hp["steps"])))
        self.criterion = CPCLoss(str(hp["negatives"]))

    def view_spec(self, train_size: int) -> ViewSpec:
        return ViewSpec(n_global=1, global_size=train_size, color=False, flip=False, blur=(0.0,), solarize=(0.0,))

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        z = self.backbone.frames(views[0])  # (B, T, D)
        c, _ = self.context(z)
        steps = min(len(self.predictors), z.shape[1] - 1)
        predictions = [self.predictors[k - 1](c[:, :-k]) for k in range(1, steps + 1)]
        with float32(z):
            return self.criterion([p.float() for p in predictions], z.float())

    def optimizer_config(self) -> dict[str, Any]:
        return {"name": "adamw", "lr": 2e-3, "weight_decay": 1e-4, "warmup_epochs": 1}
