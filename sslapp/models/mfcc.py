"""MFCC statistics and contour as an encoder module: a fixed description of a sound, fitted only in its
final standardisation. The same numbers as `sslapp.modalities.audio.quick.mfcc_features` (which computes
them in numpy for the first map); being an `nn.Module` with buffers, it is embedded, chosen, trained on
and exported (ONNX) like every other encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from sslapp.modalities.audio.frontend import DB_CEIL, DB_FLOOR, MELS
from sslapp.modalities.audio.quick import ACTIVE_DB, CONTOUR_POINTS, MFCC_DIMS, N_MFCC, dct_matrix
from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD


class MFCCStats(nn.Module):
    """(B, 3, MELS, FRAMES) ImageNet-normalised log-mel pictures -> (B, MFCC_DIMS) standardised MFCC
    statistics (mean and std of 20 MFCCs and their deltas over the frames that hold sound) and contour
    (the 20 MFCCs at CONTOUR_POINTS moments from the first frame that holds sound to the last)."""

    def __init__(self, n_mfcc: int = N_MFCC, points: int = CONTOUR_POINTS):
        super().__init__()
        self.points = int(points)
        self.dim = 4 * int(n_mfcc) + int(n_mfcc) * self.points
        self.register_buffer("dct", torch.from_numpy(dct_matrix(int(n_mfcc), MELS)))
        self.register_buffer("feat_mean", torch.zeros(self.dim))
        self.register_buffer("feat_std", torch.ones(self.dim))

    def stats(self, x: torch.Tensor) -> torch.Tensor:
        """The raw statistics, before standardisation."""
        grey = x[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]  # back to [0, 1]
        db = grey * (DB_CEIL - DB_FLOOR) + DB_FLOOR  # (B, MELS, FRAMES)
        mfcc = torch.einsum("km,bmt->bkt", self.dct, db)
        # np.gradient along frames: central differences inside, one-sided at the ends
        inner = (mfcc[..., 2:] - mfcc[..., :-2]) / 2
        delta = torch.cat([mfcc[..., 1:2] - mfcc[..., :1], inner, mfcc[..., -1:] - mfcc[..., -2:-1]], dim=-1)
        energy = db.amax(dim=1)  # (B, FRAMES)
        weight = (energy >= energy.amax(dim=1, keepdim=True) - ACTIVE_DB).float().unsqueeze(1)
        count = weight.sum(dim=2)
        out = []
        for feats in (mfcc, delta):
            mean = (feats * weight).sum(dim=2) / count
            var = ((feats - mean.unsqueeze(2)) ** 2 * weight).sum(dim=2) / count
            out += [mean, var.clamp_min(0).sqrt()]
        return torch.cat([*out, self.contour(mfcc, weight[:, 0] > 0)], dim=1)

    def contour(self, mfcc: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """(B, K, FRAMES) MFCCs and (B, FRAMES) active frames -> (B, K * points), coefficient-major."""
        frames = mfcc.shape[-1]
        index = torch.arange(frames, device=mfcc.device).expand_as(active)
        first = torch.where(active, index, frames).amin(dim=1)
        last = torch.where(active, index, -1).amax(dim=1)
        steps = torch.linspace(0.0, 1.0, self.points, device=mfcc.device)
        pos = first.unsqueeze(1).float() + (last - first).unsqueeze(1).float() * steps  # (B, points)
        lo = pos.floor().long()
        hi = (lo + 1).clamp(max=frames - 1)
        w = (pos - lo.float()).unsqueeze(1)
        size = (mfcc.shape[0], mfcc.shape[1], self.points)
        at = lambda i: torch.gather(mfcc, 2, i.unsqueeze(1).expand(size))  # noqa: E731
        return (at(lo) * (1 - w) + at(hi) * w).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.stats(x) - self.feat_mean) / self.feat_std


@torch.inference_mode()
def fit_mfcc(images: torch.Tensor) -> tuple[MFCCStats, torch.Tensor]:
    """Fit the standardisation on ImageNet-normalised log-mel pictures; the module and their features."""
    module = MFCCStats()
    raw = torch.cat([module.stats(images[i:i + 1024]) for i in range(0, len(images), 1024)])
    module.feat_mean.copy_(raw.mean(0))
    module.feat_std.copy_(raw.std(0, unbiased=False) + 1e-6)
    assert module.dim == MFCC_DIMS
    return module.eval(), (raw - module.feat_mean) / module.feat_std
