"""Features through onnxruntime on a CPU: the same numbers as torch, and torch where the exporter cannot go."""

from __future__ import annotations

import logging

import numpy as np
import torch

from sslapp.features.extract import encoder_features
from sslapp.features.onnx_cpu import onnx_runner
from sslapp.models.encoder import Encoder, EncoderConfig
from sslapp.models.patches import fit_patch_codes

SMALL = {"atoms": 8, "patch": 3, "dims": 4}


def cache_rows(n: int, side: int = 16, seed: int = 0) -> np.ndarray:
    """uint8 (N, S, S, 3) rows, as the image cache holds them."""
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def small_network() -> Encoder:
    torch.manual_seed(0)
    return Encoder(EncoderConfig("resnet18-w16", 16, 24, method="simclr")).eval()  # resized 16 -> 24 inside


def test_onnxruntime_gives_torchs_features_in_every_batch():
    model, rows = small_network(), cache_rows(70)
    torch_feats = encoder_features(model, rows, batch_size=32, device="cpu", onnx_min_rows=10**9)
    seen: list[tuple[int, int]] = []
    onnx_feats = encoder_features(model, rows, batch_size=32, device="cpu", onnx_min_rows=1,
                                  progress=lambda done, total: seen.append((done, total)))
    assert onnx_feats.shape == torch_feats.shape == (70, model.dim)
    assert np.abs(onnx_feats - torch_feats).max() < 1e-4
    assert not np.array_equal(onnx_feats, torch_feats)  # a different runtime did compute them
    assert seen == [(32, 70), (64, 70), (70, 70)]
    subset = np.array([69, 3, 3, 40])  # the rows asked for, in their order
    assert np.abs(encoder_features(model, rows, subset, batch_size=2, device="cpu", onnx_min_rows=1)
                  - torch_feats[subset]).max() < 1e-4


def test_a_module_the_exporter_cannot_take_stays_on_torch(caplog):
    rows = cache_rows(40, side=24)
    enc = Encoder(EncoderConfig("patches", 24, 16, method="patches", extra={"backbone_options": SMALL}))
    with torch.no_grad():
        fitted, _ = fit_patch_codes(enc.preprocess(torch.from_numpy(rows).permute(0, 3, 1, 2).float() / 255),
                                    fit_patches=2000, **SMALL)
    enc.backbone.load_state_dict(fitted.state_dict())
    enc.eval()
    batch = rows.transpose(0, 3, 1, 2).astype(np.float32) / 255
    with caplog.at_level(logging.INFO, logger="sslapp.features.onnx_cpu"):
        assert onnx_runner(enc, batch) is None  # adaptive pooling after a resize: not exportable
    assert "features stay on torch" in caplog.text
    feats = encoder_features(enc, rows, batch_size=16, device="cpu", onnx_min_rows=1)
    with torch.no_grad():
        assert np.allclose(feats, enc(torch.from_numpy(batch)).numpy(), atol=1e-5)


def test_a_runtime_that_disagrees_with_torch_is_not_trusted(caplog):
    class Drifting(torch.nn.Module):
        """Exports fine, but its traced graph no longer matches what torch computes afterwards."""

        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return x.mean((2, 3)) * (1.0 if self.calls == 1 else 2.0)

    batch = cache_rows(8).transpose(0, 3, 1, 2).astype(np.float32) / 255
    with caplog.at_level(logging.WARNING, logger="sslapp.features.onnx_cpu"):
        assert onnx_runner(Drifting(), batch) is None
    assert "differ from torch's" in caplog.text
