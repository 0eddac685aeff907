"""The from-scratch recipe's options: narrow ResNets at native size, and a first layer from patches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sslapp.bench.data import synthetic_images, workspace_from_arrays
from sslapp.catalogue import BACKBONES as CATALOGUE_BACKBONES
from sslapp.models.backbones import NARROW, build_backbone
from sslapp.models.encoder import load_encoder
from sslapp.models.patches import first_layer_filters
from sslapp.models.shipped import WeightsError
from sslapp.models.weights import first_conv, init_backbone
from sslapp.ssl.train import pretrain

TINY = {"epochs": 1, "batch_size": 8, "probe_size": 16, "seed": 3}


@pytest.mark.parametrize("name", list(NARROW))
@pytest.mark.parametrize("size", [16, 96])
def test_narrow_resnets_keep_the_resolution_and_their_width(name, size):
    width = NARROW[name]
    backbone = build_backbone(name, size)
    assert name in CATALOGUE_BACKBONES
    assert backbone.dim == 8 * width
    assert backbone.module(torch.randn(2, 3, size, size)).shape == (2, 8 * width)
    stem = first_conv(backbone.module)
    assert stem.out_channels == (width if size <= 64 else width // 2)
    assert stem.stride == ((1, 1) if size <= 64 else (2, 2))  # small images keep every pixel


def test_patch_filters_are_the_whitened_dictionary_folded_into_a_convolution():
    """A filter's response to a raw patch is its atom's response to the centred, whitened patch,
    up to one constant per filter: so the folding into a convolution is exact."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(64, 3, 12, 12, generator=gen)
    images[:, :, :, 6:] += 2.0  # some structure: an edge
    filters = first_layer_filters(images, count=8, kernel=3, seed=1, fit_patches=4000)
    assert filters.shape == (8, 3, 3, 3) and torch.isfinite(filters).all()
    responses = F.conv2d(images, filters)  # (64, 8, 10, 10)
    # every response of one filter differs from another's in more than a constant (they are not all alike)
    flat = responses.permute(1, 0, 2, 3).reshape(8, -1)
    assert torch.linalg.matrix_rank(flat - flat.mean(1, keepdim=True)) == 8
    # a filter ignores the patch's mean: adding a constant to every pixel changes nothing
    shifted = F.conv2d(images + 5.0, filters)
    assert torch.allclose(shifted, responses, atol=1e-3)


def test_the_first_layer_from_patches_replaces_only_the_stem_at_the_same_scale():
    torch.manual_seed(0)
    backbone = build_backbone("resnet18-w16", 16)
    before = {k: v.clone() for k, v in backbone.module.state_dict().items()}
    x, _ = synthetic_images(32, 16)
    images = torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255)
    assert init_backbone(backbone, "patches", images) == "patches"
    after = backbone.module.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == ["conv1.weight"]
    assert float(after["conv1.weight"].std()) == pytest.approx(float(before["conv1.weight"].std()), rel=1e-3)
    with pytest.raises(WeightsError, match="needs the images"):
        init_backbone(backbone, "patches")


def test_pretraining_a_narrow_resnet_from_patches(tmp_path):
    x, y = synthetic_images(16, 16)
    ws = workspace_from_arrays(tmp_path / "ws", x, y)
    result = pretrain(ws, {**TINY, "backbone": "resnet18-w16", "init": "patches", "probe": False})
    assert result["backbone"] == "resnet18-w16"
    encoder = load_encoder(result["encoder"])
    assert encoder(torch.rand(2, 3, 16, 16)).shape == (2, 128)
    assert encoder.config.extra["init"] == "patches"
    assert ws.store.runs(kind="pretrain")[0]["params"]["init"] == "patches"
    from sslapp.features.read import describe

    assert describe(ws.store.latest_artifact("encoder")) == "SimCLR resnet18-w16 (first layer from patches), 1 epoch"
