"""Each SSL method on tiny tensors: known values and invariances of the losses, the momentum and
freezing rules, the registry, and three real optimiser steps per method."""

import math

import pytest
import torch
import torchvision

from sslapp.models.backbones import build_backbone
from sslapp.models.encoder import Encoder, EncoderConfig
from sslapp.ssl.augment import make_views
from sslapp.ssl.methods import METHODS, build_method
from sslapp.ssl.methods.base import build_optimizer
from sslapp.ssl.methods.rotation import rotate_batch

SIZE = 16
RESNET = "resnet18-w16"  # ResNet-18 at a quarter of its width: every layer of the real one, 16x fewer weights
VIT = "vit-tiny-p8"  # 2x2 patches at 16 px: a real ViT-Tiny, cheap enough for a test


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def method(name, backbone=RESNET, **hp):
    return build_method(name, build_backbone(backbone, SIZE), **hp)


def test_registry_and_hyperparameters_fail_loudly():
    assert set(METHODS) == {"simclr", "mocov3", "byol", "swav", "dino", "mae", "rotation", "jigsaw", "colorization",
                            "byol-a", "cpc", "wav2vec", "simcse", "word2vec", "mlm", "mlm-scratch"}
    with pytest.raises(ValueError, match="simcse trains on texts with its own loop"):
        method("simcse")
    with pytest.raises(ValueError, match="unknown method 'simclrr'; choose one of: simclr, mocov3"):
        method("simclrr")
    with pytest.raises(ValueError, match="unknown hyperparameter.*temprature.*accepted:.*temperature"):
        method("simclr", temprature=0.5)
    with pytest.raises(ValueError, match="MAE needs a ViT backbone"):
        method("mae", "resnet18-std")


def test_ntxent_of_identical_views_is_lower_than_of_unrelated_views():
    m = method("simclr", temperature=0.1)
    x, other = torch.randn(8, 3, SIZE, SIZE), torch.randn(8, 3, SIZE, SIZE)
    same, different = m([x, x.clone()], 0).item(), m([x, other], 0).item()
    assert same < different
    # unrelated views cannot beat chance by much: log(2B - 1) is the loss of uniform similarities
    assert different > 0.5 * math.log(2 * 8 - 1)


@pytest.mark.parametrize("name", ["byol", "mocov3"])
def test_momentum_update_moves_the_target_towards_the_online_network(name):
    m = method(name, hidden_dim=32, output_dim=16)
    with torch.no_grad():
        for p in m.backbone.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    target = m.backbone_momentum

    def distance():
        return sum((p - q).pow(2).sum().item() for p, q in zip(m.backbone.parameters(), target.parameters(), strict=True))

    before = distance()
    m.on_step_end(0, 10)  # momentum_start = 0.99 at step 0
    assert m.momentum == pytest.approx(0.99)
    assert distance() == pytest.approx(before * 0.99**2, rel=1e-3)
    m.on_step_end(9, 10)
    assert m.momentum == pytest.approx(1.0)
    assert not any(p.requires_grad for p in target.parameters())


def test_byol_loss_is_minus_one_for_a_perfect_predictor():
    m = method("byol", hidden_dim=32, output_dim=16).eval()
    x = torch.randn(4, 3, SIZE, SIZE)
    m.prediction_head = torch.nn.Identity()  # online projection == target projection (same weights)
    assert m([x, x], 0).item() == pytest.approx(-1.0, abs=1e-5)


def test_rotation_labels_match_the_rotations():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    rotated, labels = rotate_batch(x)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    for i, k in enumerate(labels.tolist()):
        assert torch.equal(rotated[i], torch.rot90(x[i % 2], k, dims=(1, 2)))
    m = method("rotation")
    assert m.classifier.out_features == 4 and m([torch.randn(4, 3, SIZE, SIZE)], 0).item() > 0


def test_swav_multicrop_shapes_normalised_and_frozen_prototypes():
    m = method("swav", hidden_dim=32, output_dim=16, n_prototypes=10, n_local=2)
    spec = m.view_spec(SIZE)
    views = make_views(torch.randint(0, 256, (4, SIZE, SIZE, 3), dtype=torch.uint8), spec, seed=0)
    assert [v.shape[-1] for v in views] == [SIZE, SIZE, spec.local_size, spec.local_size]
    assert m._logits(views[2]).shape == (4, 10)
    loss = m(views, 0)
    assert torch.isfinite(loss)
    assert torch.allclose(m.prototypes.heads[0].weight.norm(dim=1), torch.ones(10), atol=1e-5)
    loss.backward()
    m.on_after_backward(epoch=0)
    assert m.prototypes.heads[0].weight.grad is None and m.projection_head.layers[0].weight.grad is not None
    m(views, 1).backward()
    m.on_after_backward(epoch=1)
    assert m.prototypes.heads[0].weight.grad is not None


@pytest.mark.parametrize("backbone", ["resnet18-std", VIT])
def test_dino_multicrop_with_resnet_and_vit(backbone):
    m = method("dino", backbone, hidden_dim=32, bottleneck_dim=16, output_dim=64, n_local=2)
    spec = m.view_spec(SIZE)
    assert (spec.n_global, spec.n_local) == (2, 2) and spec.local_size < SIZE
    views = make_views(torch.randint(0, 256, (4, SIZE, SIZE, 3), dtype=torch.uint8), spec, seed=0)
    assert m.projection_head(m.backbone(views[2])).shape == (4, 64)
    loss = m(views, 0)
    assert torch.isfinite(loss) and loss.item() > 0
    assert m.criterion.center.abs().sum() > 0  # the teacher centre moved
    loss.backward()
    m.on_after_backward(epoch=0)  # last layer frozen during the first epoch
    assert all(p.grad is None for p in m.projection_head.last_layer.parameters())


def test_dino_of_identical_student_and_teacher_sees_the_teachers_entropy():
    # With the student equal to the teacher and both temperatures equal, DINO's cross-entropy over
    # two views that are the same image is the entropy of the teacher softmax: at least 0, at most log K.
    m = method("dino", hidden_dim=32, bottleneck_dim=16, output_dim=64, n_local=0, student_temp=0.04).eval()
    x = torch.randn(4, 3, SIZE, SIZE)
    loss = m([x, x], 0).item()
    assert 0 <= loss <= math.log(64) + 1e-4


def test_mae_masks_the_requested_share_of_patches():
    m = method("mae", "vit-tiny-p4", mask_ratio=0.75)  # 16 patches + class token
    keep, masked = m.random_mask(3, torch.device("cpu"))
    assert keep.shape == (3, 1 + 4) and masked.shape == (3, 12)
    assert (keep[:, 0] == 0).all()  # the class token is always kept
    for k, msk in zip(keep, masked, strict=True):
        assert sorted(torch.cat([k, msk]).tolist()) == list(range(17))
    loss = m([torch.randn(3, 3, SIZE, SIZE)], 0)
    assert torch.isfinite(loss) and loss.item() > 0.5  # normalised-pixel targets start near variance 1


@pytest.mark.parametrize("name,backbone", [
    ("simclr", RESNET), ("mocov3", RESNET), ("byol", RESNET), ("swav", RESNET),
    ("dino", VIT), ("mae", VIT), ("rotation", RESNET), ("jigsaw", RESNET), ("colorization", RESNET)])
def test_three_real_steps_change_the_encoder_and_keep_the_loss_finite(name, backbone):
    small = {"simclr": {"hidden_dim": 64}, "mocov3": {"hidden_dim": 64}, "byol": {"hidden_dim": 64},
             "swav": {"hidden_dim": 64, "n_prototypes": 16, "n_local": 2},
             "dino": {"hidden_dim": 64, "output_dim": 128, "n_local": 2}, "mae": {"decoder_layers": 1},
             "rotation": {}, "jigsaw": {"tile_dim": 16, "hidden_dim": 64}, "colorization": {"hidden_dim": 32}}[name]
    m = method(name, backbone, **small)
    opt = build_optimizer(m, batch_size=8)
    before = {k: v.clone() for k, v in m.encoder.state_dict().items()}
    batch = torch.randint(0, 256, (8, SIZE, SIZE, 3), dtype=torch.uint8)
    spec = m.view_spec(SIZE)
    for step in range(3):
        loss = m(make_views(batch, spec, seed=step), epoch=1)
        assert torch.isfinite(loss), f"{name} loss at step {step} is {loss}"
        loss.backward()
        # every trainable parameter gets a gradient, so DDP needs no find_unused_parameters
        assert [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None] == []
        m.on_after_backward(1)
        opt.step()
        opt.zero_grad(set_to_none=True)
        m.on_step_end(step, 3)
    after = m.encoder.state_dict()
    trained = [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
    assert len(trained) > 0.9 * sum(v.is_floating_point() for v in before.values())
    # the saved encoder is exactly the app's Encoder backbone
    enc = Encoder(EncoderConfig(backbone=backbone, input_size=SIZE, train_size=SIZE, method=name))
    enc.backbone.load_state_dict(after)
    assert enc(torch.rand(2, 3, SIZE, SIZE)).shape == (2, m.backbone_info.dim)


def test_optimizer_scales_lr_with_batch_and_skips_decay_on_norms_and_biases():
    m = method("simclr", hidden_dim=32)
    opt = build_optimizer(m, batch_size=512)
    assert opt.param_groups[0]["lr"] == pytest.approx(2 * m.optimizer_config()["lr"])
    decayed, plain = opt.param_groups
    assert all(p.ndim > 1 for p in decayed["params"]) and plain["weight_decay"] == 0
    frozen = method("byol", hidden_dim=32)
    ids = {id(p) for g in build_optimizer(frozen, 256).param_groups for p in g["params"]}
    assert not any(id(p) in ids for p in frozen.backbone_momentum.parameters())


def test_backbone_names_and_vit_any_size():
    from sslapp.models.backbones import is_backbone_name

    assert all(map(is_backbone_name, ["resnet18", "resnet50-std", "vit-tiny", "vit-small-p4"]))
    assert not any(map(is_backbone_name, ["vit-tiny-p0", "vit-huge", "resnet18-p4", "auto"]))
    vit = build_backbone("vit-tiny-p4", SIZE).module.eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    stock = torchvision.models.VisionTransformer.forward(vit, x)  # same weights, torchvision's forward
    assert torch.allclose(vit(x), stock, atol=1e-5)
    assert vit(torch.randn(2, 3, 8, 8)).shape == (2, 192)  # smaller crops: interpolated positions
    with pytest.raises(ValueError, match="multiple of 4"):
        vit(torch.randn(2, 3, 10, 10))


def test_losses_are_float32_and_finite_under_bf16_autocast():
    batch = torch.randint(0, 256, (4, SIZE, SIZE, 3), dtype=torch.uint8)
    for name, hp in [("swav", {"hidden_dim": 32, "n_prototypes": 8, "n_local": 0}),
                     ("dino", {"hidden_dim": 32, "output_dim": 64, "n_local": 0}),
                     ("jigsaw", {"tile_dim": 16, "hidden_dim": 32}), ("colorization", {"hidden_dim": 16})]:
        m = method(name, **hp)
        views = make_views(batch, m.view_spec(SIZE), seed=0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = m(views, 1)
        assert loss.dtype == torch.float32 and torch.isfinite(loss), name
