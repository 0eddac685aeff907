"""The classifier sslapp trains and exports: the shared Encoder plus a linear head.

Input is (B, 3, S, S) floats in [0, 1] at the workspace cache size, output is class
probabilities (softmax inside, so every export returns the same numbers the app shows).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from sslapp.ssl.encoder import Encoder, EncoderConfig, config_from_json, config_to_json


class Classifier(nn.Module):
    def __init__(self, encoder: Encoder, classes: list[str]):
        super().__init__()
        self.encoder = encoder
        self.classes = list(classes)
        self.head = nn.Linear(encoder.dim, len(classes))

    @property
    def config(self) -> EncoderConfig:
        return self.encoder.config

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)


def save_classifier(model: Classifier, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Safetensors with encoder config and class names in the header; atomic write."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"sslapp_encoder": config_to_json(model.config), "sslapp_classes": json.dumps(model.classes),
            **(metadata or {})}
    save_file(state, tmp, metadata=meta)
    tmp.replace(path)


def read_metadata(path: str | Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


def load_classifier(path: str | Path, map_location: str = "cpu") -> Classifier:
    meta = read_metadata(path)
    if "sslapp_classes" not in meta or "sslapp_encoder" not in meta:
        raise ValueError(f"{path} is not an sslapp classifier file (missing sslapp metadata)")
    model = Classifier(Encoder(config_from_json(meta["sslapp_encoder"])), json.loads(meta["sslapp_classes"]))
    model.load_state_dict(load_file(str(path), device=map_location))
    return model.eval()
