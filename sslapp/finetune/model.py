"""The classifier sslapp trains and exports: the shared Encoder plus a linear head.

Input is (B, 3, S, S) floats in [0, 1] at the workspace cache size, output is class
probabilities (softmax inside, so every export returns the same numbers the app shows).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from sslapp.models.encoder import Encoder, EncoderConfig, config_from_json, config_to_json


class Classifier(nn.Module):
    """`normalize=True` L2-normalises features before the head: the linear probe is trained on
    normalised embeddings, and carrying the step in the model keeps every export exact."""

    def __init__(self, encoder: Encoder, classes: list[str], normalize: bool = False):
        super().__init__()
        self.encoder = encoder
        self.classes = list(classes)
        self.normalize = bool(normalize)
        self.head = nn.Linear(encoder.dim, len(classes))

    @property
    def config(self) -> EncoderConfig:
        return self.encoder.config

    def features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)
        return F.normalize(f, dim=1) if self.normalize else f

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def on_features(self, features: torch.Tensor) -> torch.Tensor:
        """Class probabilities from the encoder's vectors: for a head on vectors computed elsewhere
        (`FeaturesOnly`), the same steps `forward` takes after the encoder."""
        f = F.normalize(features, dim=1) if self.normalize else features
        return torch.softmax(self.head(f), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)


class FeaturesOnly:
    """Stands in for an encoder the classifier file does not hold (a text start such as MiniLM or
    TF-IDF, whose vectors the features service computes): its `dim` and a config naming it, so
    `Classifier(FeaturesOnly(...), classes)` trains and saves the head alone; it refuses inputs."""

    def __init__(self, start: str, dim: int, input_size: int, encoder_artifact_id: int):
        self.dim = int(dim)
        self.config = EncoderConfig(start, int(input_size), int(input_size), method="frozen",
                                    extra={"start": start, "encoder_artifact_id": int(encoder_artifact_id),
                                           "head_only": True})

    def __call__(self, x):
        raise ValueError(f"this classifier holds only a head on {self.config.backbone} vectors; compute them "
                         "with the workspace's features first")


def save_classifier(model: Classifier, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Safetensors with encoder config and class names in the header; atomic write."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"sslapp_encoder": config_to_json(model.config), "sslapp_classes": json.dumps(model.classes),
            "sslapp_head": json.dumps({"normalize": "l2" if model.normalize else "none"}), **(metadata or {})}
    save_file(state, tmp, metadata=meta)
    tmp.replace(path)


def read_metadata(path: str | Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


def load_classifier(path: str | Path, map_location: str = "cpu") -> Classifier:
    """The classifier saved at `path`; a head-only one (on text vectors) comes back on a `FeaturesOnly`."""
    meta = read_metadata(path)
    if "sslapp_classes" not in meta or "sslapp_encoder" not in meta:
        raise ValueError(f"{path} is not an sslapp classifier file (missing sslapp metadata)")
    head = json.loads(meta.get("sslapp_head", "{}"))
    config = config_from_json(meta["sslapp_encoder"])
    state = load_file(str(path), device=map_location)
    if config.extra.get("head_only"):
        encoder = FeaturesOnly(config.backbone, state["head.weight"].shape[1], config.input_size,
                               config.extra.get("encoder_artifact_id", -1))
    else:
        encoder = Encoder(config)
    model = Classifier(encoder, json.loads(meta["sslapp_classes"]), normalize=head.get("normalize") == "l2")
    model.load_state_dict(state)
    return model.eval()
