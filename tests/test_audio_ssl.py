"""The sound-only SSL objectives on tiny shapes (lightly's way): CPC and the wav2vec 2.0-style masked
contrastive loss train the frame encoder, every trainable parameter gets a gradient, a step lowers the loss
on a fixed batch, and `auto` gives them the frame encoder at the picture's full size."""

from __future__ import annotations

import pytest
import torch

from sslapp.models.backbones import build_backbone
from sslapp.ssl.methods import build_method
from sslapp.ssl.methods.base import build_optimizer
from sslapp.ssl.methods.wav2vec import span_mask
from sslapp.ssl.plan import auto_plan


@pytest.mark.parametrize(("name", "hparams"), [("cpc", {}), ("cpc", {"negatives": "clip"}), ("wav2vec", {"heads": 2})])
def test_frame_objectives_train_the_frame_encoder(name, hparams):
    torch.manual_seed(0)
    method = build_method(name, build_backbone("frames", 16, width=32), **hparams)
    x = torch.randn(6, 3, 16, 16)
    optimizer = build_optimizer(method, batch_size=6)

    def loss_on_the_same_mask() -> float:  # wav2vec draws its masks from torch's RNG
        torch.manual_seed(1)
        return method([x]).item()

    first = loss_on_the_same_mask()
    method([x]).backward()
    assert all(p.grad is not None for p in method.parameters() if p.requires_grad)
    for _ in range(10):
        optimizer.zero_grad()
        method([x]).backward()
        optimizer.step()
    assert loss_on_the_same_mask() < first
    assert method.encoder(x).shape == (6, 64)  # mean and max of 32 channels: the clip's embedding


def test_frame_objectives_refuse_a_picture_network_and_auto_picks_frames():
    with pytest.raises(ValueError, match="CPC needs the frames backbone"):
        build_method("cpc", build_backbone("resnet18-std", 32))
    plan = auto_plan("wav2vec", "auto", 64, 2000, torch.device("cpu"))
    assert plan["backbone"] == "frames" and plan["train_size"] == 64
    mask = span_mask(3, 20, 0.1, 5, torch.Generator().manual_seed(0))
    assert mask.any(dim=1).all() and mask.float().mean() < 0.9


@pytest.mark.parametrize("name", ["simclr", "byol-a", "byol", "mocov3", "swav", "dino", "mae"])
def test_every_picture_method_for_sounds_trains_on_the_audio_views(name):
    """The picture methods a sound workspace offers take a step on the audio views of log-mel rows (globals
    and, for SwAV and DINO, local crops), as the loop feeds them."""
    import numpy as np

    from sslapp.modalities import get_modality
    from sslapp.ssl.audio_views import make_views

    assert name in get_modality("audio").ssl_methods
    torch.manual_seed(0)
    backbone = build_backbone("vit-tiny-p8" if name == "mae" else "resnet18-w16", 32)
    method = build_method(name, backbone)
    rows = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (8, 64, 64), dtype=np.uint8))
    loss = method(make_views(rows, method.view_spec(32), seed=1))
    loss.backward()
    assert torch.isfinite(loss)
