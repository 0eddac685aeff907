"""A wav2vec 2.0-style masked contrastive objective (Baevski et al., 2020) on sounds' log-mel pictures: spans
of the frame encoder's vectors are replaced by a learned mask vector, a small Transformer reads the whole
sequence, and at each masked frame its output must pick that frame's own (unmasked) vector among
distractors: the other masked frames of the same clip (`MaskedContrastiveLoss`, cosine similarity over a
temperature). wav2vec 2.0 quantises the targets and adds a diversity loss; here the targets are the frame
vectors themselves, projected, and the distractors keep them apart. The frame encoder is what is kept."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslapp.models.backbones import Backbone
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, float32
from sslapp.ssl.methods.cpc import frame_backbone


def span_mask(b: int, t: int, start_prob: float, span: int, generator: torch.Generator | None = None) -> Tensor:
    """(B, T) booleans: spans of `span` frames starting where a coin with `start_prob` lands, at least one
    frame masked per clip (wav2vec 2.0's masking)."""
    starts = torch.rand(b, t, generator=generator) < start_prob
    starts[torch.arange(b), torch.randint(0, t, (b,), generator=generator)] = True
    mask = torch.zeros(b, t, dtype=torch.bool)
    for offset in range(span):
        mask[:, offset:] |= starts[:, :t - offset]
    return mask


class MaskedContrastiveLoss(nn.Module):
    """At every masked frame: cosine similarity / temperature between the context output and the frame's target,
    against the targets of the clip's other masked frames."""

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        self.temperature = temperature

    def forward(self, context: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        """context, targets: (B, T, D); mask: (B, T) bool."""
        c, q = F.normalize(context, dim=-1), F.normalize(targets, dim=-1)
        sim = torch.einsum("btd,bsd->bts", c, q) / self.temperature  # frame t's output vs frame s's target
        allowed = mask.unsqueeze(1) & mask.unsqueeze(2)  # masked frames only, on both sides
        sim = sim.masked_fill(~allowed, float("-inf"))
        rows = mask.nonzero(as_tuple=True)
        logits = sim[rows]  # (masked frames, T)
        return F.cross_entropy(logits, rows[1])


class Wav2VecStyle(SSLMethod):
    name = "wav2vec"
    defaults = {"layers": 2, "heads": 4, "mask_prob": 0.1, "mask_span": 5, "temperature": 0.1}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        frame_backbone(backbone, "wav2vec")
        width, hp = backbone.module.width, self.hparams
        self.mask_vector = nn.Parameter(torch.randn(width) * 0.02)
        self.position = nn.Conv1d(width, width, 9, padding=4, groups=16)  # wav2vec 2.0's convolutional positions
        layer = nn.TransformerEncoderLayer(width, int(hp["heads"]), 2 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.context = nn.TransformerEncoder(layer, int(hp["layers"]), enable_nested_tensor=False)
        self.project_context, self.project_target = nn.Linear(width, width), nn.Linear(width, width)
        self.criterion = MaskedContrastiveLoss(float(hp["temperature"]))

    def view_spec(self, train_size: int) -> ViewSpec:
        return ViewSpec(n_global=1, global_size=train_size, color=False, flip=False, blur=(0.0,), solarize=(0.0,))

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        z = self.backbone.frames(views[0])  # (B, T, D)
        b, t, _ = z.shape
        mask = span_mask(b, t, float(self.hparams["mask_prob"]), int(self.hparams["mask_span"])).to(z.device)
        masked = torch.where(mask.unsqueeze(-1), self.mask_vector.to(z.dtype), z)
        masked = masked + self.position(masked.transpose(1, 2)).transpose(1, 2)
        context = self.project_context(self.context(masked))
        with float32(z):
            return self.criterion(context.float(), self.project_target(z).float(), mask)

    def optimizer_config(self) -> dict[str, Any]:
        return {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4, "warmup_epochs": 1}
