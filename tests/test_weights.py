"""Starting weights: real state-dict files of every kind, the shipped ImageNet weights, and pretraining from a file."""

from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from sslapp.models.backbones import build_backbone
from sslapp.models.shipped import WeightsError, imagenet_available, imagenet_weights_path
from sslapp.models.weights import default_init, init_backbone, read_state_dict


@pytest.fixture(scope="module")
def resnet_state():
    """torchvision's ResNet-18 with its own (seeded) initialisation, classifier head included."""
    torch.manual_seed(123)
    return {k: v.clone() for k, v in torchvision.models.resnet18().state_dict().items()}


def assert_loaded(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    got = module.state_dict()
    compared = 0
    for name, value in state.items():
        if name.startswith("fc.") or name.endswith("num_batches_tracked"):
            continue  # the classifier head is dropped; the counters are not weights
        assert torch.equal(got[name], value), name
        compared += 1
    assert compared == len([k for k in got if not k.endswith("num_batches_tracked")])


def test_a_torch_save_state_dict_loads(tmp_path, resnet_state):
    path = tmp_path / "resnet18.pt"
    torch.save(resnet_state, path)
    backbone = build_backbone("resnet18-std", 32)
    assert not torch.equal(backbone.module.conv1.weight, resnet_state["conv1.weight"])
    assert init_backbone(backbone, str(path)) == "file resnet18.pt"
    assert_loaded(backbone.module, resnet_state)


def test_a_safetensors_state_dict_loads(tmp_path, resnet_state):
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in resnet_state.items()}, str(path))
    backbone = build_backbone("resnet18-std", 32)
    init_backbone(backbone, str(path))
    assert_loaded(backbone.module, resnet_state)


@pytest.mark.parametrize("wrap", ["nested", "module-prefix", "nested-and-prefixed"])
def test_checkpoint_wrappers_and_prefixes_are_unwrapped(tmp_path, resnet_state, wrap):
    prefixed = {f"module.{k}": v for k, v in resnet_state.items()}
    data = {"nested": {"epoch": 7, "state_dict": resnet_state, "optimizer": {"lr": 0.1}},
            "module-prefix": prefixed,
            "nested-and-prefixed": {"model": prefixed, "step": 100}}[wrap]
    path = tmp_path / "checkpoint.pth"
    torch.save(data, path)
    backbone = build_backbone("resnet18-std", 32)
    init_backbone(backbone, str(path))
    assert_loaded(backbone.module, resnet_state)


def test_a_file_for_another_stem_names_the_mismatch(tmp_path, resnet_state):
    path = tmp_path / "resnet18.pt"
    torch.save(resnet_state, path)
    small_stem = build_backbone("resnet18", 32)  # 3x3 stem for small images: conv1 is (64, 3, 3, 3)
    before = small_stem.module.layer1[0].conv1.weight.clone()
    with pytest.raises(WeightsError) as failure:
        init_backbone(small_stem, str(path))
    message = str(failure.value)
    assert "conv1.weight (64, 3, 7, 7) vs (64, 3, 3, 3)" in message
    assert "does not fit this backbone" in message and "same architecture" in message
    assert torch.equal(small_stem.module.layer1[0].conv1.weight, before)  # nothing half-loaded


def test_a_file_for_another_network_names_missing_and_unknown_weights(tmp_path):
    path = tmp_path / "resnet34.pt"
    torch.save(torchvision.models.resnet34().state_dict(), path)
    with pytest.raises(WeightsError, match=r"names are unknown to it \(e\.g\. layer1\.2\."):
        init_backbone(build_backbone("resnet18-std", 32), str(path))
    path = tmp_path / "vit.pt"
    torch.save({"conv_proj.weight": torch.zeros(192, 3, 4, 4)}, path)
    with pytest.raises(WeightsError, match=r"weights are missing .*names are unknown"):
        init_backbone(build_backbone("resnet18-std", 32), str(path))


@pytest.mark.parametrize("content, expected", [
    ("whole-module", "holds more than weights .*never unpickles code.*state_dict\\(\\)"),
    ([1, 2, 3], "holds a list, not a state dict of tensors"),
    ({"epoch": 3, "name": "run"}, "holds a dict, not a state dict of tensors"),
    ({}, "holds a dict, not a state dict"),
])
def test_files_that_are_not_state_dicts_are_refused(tmp_path, content, expected):
    path = tmp_path / "weights.pt"
    torch.save(torchvision.models.resnet18() if content == "whole-module" else content, path)
    with pytest.raises(WeightsError, match=expected):
        read_state_dict(path)
    with pytest.raises(WeightsError, match=expected):
        init_backbone(build_backbone("resnet18-std", 32), str(path))


def test_missing_and_corrupt_files_are_refused(tmp_path, resnet_state):
    with pytest.raises(WeightsError, match="weights file .*nothere.pt does not exist"):
        init_backbone(build_backbone("resnet18-std", 32), str(tmp_path / "nothere.pt"))
    corrupt = tmp_path / "w.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        read_state_dict(corrupt)
    good = tmp_path / "good.pt"
    torch.save(resnet_state, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:50_000])  # an interrupted download
    with pytest.raises(WeightsError, match="cannot be read as PyTorch weights"):
        read_state_dict(truncated)


def test_a_garbage_pt_file_is_not_called_a_model_object(tmp_path):
    garbage = tmp_path / "w.pt"
    garbage.write_bytes(b"<html><body>404 Not Found</body></html>")  # a failed download saved as weights
    with pytest.raises(WeightsError, match="cannot be read as PyTorch weights") as failure:
        read_state_dict(garbage)
    assert "holds more than weights" not in str(failure.value)  # torch says "weights_only" for every such file


# -- ImageNet weights shipped in a pip package ----------------------------------------------
def test_imagenet_weights_availability():
    assert imagenet_available("efficientnet-lite0")
    assert imagenet_weights_path("efficientnet-lite0").is_file()
    assert not imagenet_available("resnet18")
    with pytest.raises(WeightsError, match="no ImageNet weights ship for backbone 'resnet18'.*efficientnet-lite0"):
        imagenet_weights_path("resnet18")
    assert default_init("efficientnet-lite0") == "imagenet"
    assert default_init("resnet18-std") == "scratch"
    with pytest.raises(WeightsError):
        init_backbone(build_backbone("resnet18-std", 32), "imagenet")
    assert init_backbone(build_backbone("resnet18-std", 32), "scratch") == "scratch"


def test_imagenet_weights_load_into_efficientnet_lite0():
    package = torch.load(imagenet_weights_path("efficientnet-lite0"), map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    pretrained = build_backbone("efficientnet-lite0", 64)
    random_init = build_backbone("efficientnet-lite0", 64)
    assert init_backbone(pretrained, "imagenet") == "imagenet"
    got = pretrained.module.state_dict()
    # the key mapping, checked on a few tensors named independently here
    pairs = {"_conv_stem.weight": "net.conv_stem.weight", "_bn0.running_var": "net.bn1.running_var",
             "_blocks.0._depthwise_conv.weight": "net.blocks.0.0.conv_dw.weight",
             "_blocks.1._expand_conv.weight": "net.blocks.1.0.conv_pw.weight",
             "_blocks.15._project_conv.weight": "net.blocks.6.0.conv_pwl.weight",
             "_conv_head.weight": "net.conv_head.weight", "_bn1.bias": "net.bn2.bias"}
    for theirs, ours in pairs.items():
        assert torch.equal(got[ours], package[theirs].to(got[ours].dtype)), ours
    # every weight of the network came from the file: the same multiset of tensors, head left out
    def fingerprint(state):
        return sorted((tuple(v.shape), round(float(v.double().sum()), 3)) for k, v in state.items()
                      if not k.endswith("num_batches_tracked") and not k.startswith(("_fc.", "net.classifier.")))
    assert fingerprint(got) == fingerprint(package)
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    pretrained.module.eval(), random_init.module.eval()
    with torch.no_grad():
        a, b = pretrained.module(x), random_init.module(x)
    assert a.shape == (4, pretrained.dim) == (4, 1280) and torch.isfinite(a).all()
    assert not torch.allclose(a, b, atol=1e-2)


# -- pretraining from a weights file --------------------------------------------------------
@pytest.fixture
def tiny_ws(tmp_path):
    from sslapp.bench.data import synthetic_images, workspace_from_arrays

    x, y = synthetic_images(16, 16)
    return workspace_from_arrays(tmp_path / "ws", x, y)


TINY = {"method": "simclr", "backbone": "resnet18-std", "train_size": 16, "epochs": 1, "batch_size": 8,
        "probe": False, "seed": 0}


def test_pretraining_starts_from_a_weights_file(tiny_ws, tmp_path, resnet_state):
    from sslapp.models.encoder import load_encoder
    from sslapp.ssl.train import pretrain

    path = tmp_path / "start.safetensors"
    save_file({k: v.contiguous() for k, v in resnet_state.items()}, str(path))
    # one step at a negligible learning rate: the encoder still holds the file's weights
    result = pretrain(tiny_ws, {**TINY, "init": str(path), "max_steps": 1, "lr": 1e-9})
    assert result["steps"] == 1
    encoder = load_encoder(result["encoder"])
    assert encoder.config.extra["init"] == str(path)
    state = encoder.backbone.state_dict()
    for name in ("conv1.weight", "layer1.0.conv1.weight", "layer4.1.conv2.weight"):
        assert torch.allclose(state[name], resnet_state[name], atol=1e-6), name


def test_pretraining_refuses_a_bad_weights_file(tiny_ws, tmp_path, resnet_state, capsys):
    from sslapp.cli import main
    from sslapp.ssl.train import PretrainError, pretrain

    with pytest.raises(PretrainError, match="neither one of .*nor an existing weights file"):
        pretrain(tiny_ws, {**TINY, "init": str(tmp_path / "nothere.pt")})
    with pytest.raises(PretrainError, match="resnet18-std has no ImageNet weights"):
        pretrain(tiny_ws, {**TINY, "init": "imagenet"})
    path = tmp_path / "resnet18.pt"
    torch.save(resnet_state, path)
    with pytest.raises(PretrainError, match=r"conv1\.weight \(64, 3, 7, 7\) vs \(64, 3, 3, 3\)"):
        pretrain(tiny_ws, {**TINY, "backbone": "resnet18", "init": str(path)})
    code = main(["pretrain", str(tiny_ws.root), "--backbone", "resnet18", "--init", str(path), "--epochs", "1",
                 "--train-size", "16", "--batch-size", "8", "--no-probe", "--device", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    assert "failed" in err and "conv1.weight" in err and "same architecture" in err
