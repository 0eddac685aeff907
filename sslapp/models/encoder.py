"""The encoder sslapp ships: resize to the training size, normalise, backbone.

Its input is the app's canonical preprocessing output (RGB floats in [0, 1] at the workspace
cache size), so the embedding job, fine-tuning and every export share one definition.
Weights are stored as safetensors with the config in the header metadata: nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    from sslapp.models.text.base import TextEncoder


@dataclass
class EncoderConfig:
    backbone: str
    input_size: int  # the workspace cache size the model is fed
    train_size: int  # the size the backbone runs at
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    method: str = "none"
    extra: dict = field(default_factory=dict)


class Encoder(nn.Module):
    """(B, 3, input_size, input_size) floats in [0, 1] -> (B, dim) features."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        # here, not at the top: torchvision and timm (2-3 s to import) are for images only, and a text
        # workspace's jobs load their encoders through this module too
        from sslapp.models.backbones import build_backbone

        self.config = config
        bb = build_backbone(config.backbone, config.train_size, **config.extra.get("backbone_options", {}))
        self.backbone = bb.module
        self.dim = bb.dim
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.config.train_size or x.shape[-2] != self.config.train_size:
            x = F.interpolate(x, size=(self.config.train_size, self.config.train_size), mode="bilinear",
                              align_corners=False, antialias=False)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.preprocess(x))


def config_to_json(config: EncoderConfig) -> str:
    return json.dumps(asdict(config))


def config_from_json(text: str) -> EncoderConfig:
    data = json.loads(text)
    data["mean"], data["std"] = tuple(data["mean"]), tuple(data["std"])
    return EncoderConfig(**data)


def save_encoder(encoder: Encoder, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write weights and config to `path` atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.backbone.state_dict().items()}
    save_file(state, tmp, metadata={"sslapp_encoder": config_to_json(encoder.config), **(metadata or {})})
    tmp.replace(path)


def load_encoder(path: str | Path, map_location: str = "cpu") -> Encoder | TextEncoder:
    """The encoder saved at `path`: an image `Encoder`, or a text encoder (`sslapp.models.text`) when
    the file's header says so; both map cache rows to features."""
    from safetensors import safe_open

    from sslapp.models.text.base import TEXT_KEY

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if TEXT_KEY in meta:
        from sslapp.models.text import load_text_encoder

        return load_text_encoder(path)
    if "sslapp_encoder" not in meta:
        raise ValueError(f"{path} is not an sslapp encoder file (no sslapp_encoder metadata)")
    encoder = Encoder(config_from_json(meta["sslapp_encoder"]))
    encoder.backbone.load_state_dict(load_file(str(path), device=map_location))
    return encoder.eval()
