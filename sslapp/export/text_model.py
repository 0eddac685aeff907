"""The exported text classifier as one torch module, and its safetensors file (nothing pickled).

A text classifier in a workspace is a head on a text encoder's vectors (`FeaturesOnly`: the features
service computes them). The export puts the two back together from the encoder's own graph
(`TextEncoder.graph`: token ids -> MiniLM vectors, or term counts -> TF-IDF vectors) and the head's
steps (`Classifier.on_features`), so the ONNX file and the app compute the same thing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from sslapp import __version__
from sslapp.finetune.model import Classifier, FeaturesOnly
from sslapp.models.text import graph_from_config

HEADER = "sslapp_text_classifier"  # the safetensors metadata key of an exported text classifier


class TextClassifier(nn.Module):
    """The encoder graph's inputs (e.g. input_ids, attention_mask) -> class probabilities."""

    def __init__(self, vectors: nn.Module, classifier: Classifier):
        super().__init__()
        self.vectors = vectors
        self.classifier = classifier

    @property
    def classes(self) -> list[str]:
        return list(self.classifier.classes)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.classifier.on_features(self.vectors(*inputs))


def save_text_classifier(model: TextClassifier, graph_config: dict[str, Any], path: str | Path) -> None:
    """The module's weights (the encoder graph's and the head's) with what rebuilds it in the header."""
    header = {"classes": model.classes, "normalize": "l2" if model.classifier.normalize else "none",
              "graph": graph_config, "sslapp_version": __version__}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={HEADER: json.dumps(header, ensure_ascii=False)})


def load_text_classifier(path: str | Path) -> TextClassifier:
    """The module `save_text_classifier` wrote to `path`; ValueError for another file."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if HEADER not in meta:
        raise ValueError(f"{path} is not an exported sslapp text classifier (no {HEADER} metadata)")
    header = json.loads(meta[HEADER])
    state = load_file(str(path))
    vectors = graph_from_config(header["graph"], {k[len("vectors."):]: v for k, v in state.items()
                                                  if k.startswith("vectors.")})
    weight = state["classifier.head.weight"]
    head = Classifier(FeaturesOnly(str(header["graph"].get("start")), weight.shape[1], 0, -1), header["classes"],
                      normalize=header["normalize"] == "l2")
    head.load_state_dict({k[len("classifier."):]: v for k, v in state.items() if k.startswith("classifier.")})
    return TextClassifier(vectors, head).eval()
