"""What every text encoder is: a torch module from cached text rows to vectors, saved as one small
safetensors file whose header says which start it is (config as JSON, no pickles).

Text encoders run over the same cache rows as image encoders (`sslapp.features.extract`), so the
features service batches, caches, stops and reports progress for them the same way; the module
decodes the rows' UTF-8 back to texts (`texts_of`) and embeds them (`TextEncoder.embed`). For an export,
each encoder is also one torch module from its model inputs to the same vectors (`graph`: token ids for
MiniLM, term counts for TF-IDF), with what makes those inputs from a text without sslapp (`graph_spec`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sslapp.modalities.text.arrays import texts_of

TEXT_KEY = "sslapp_text_encoder"  # the safetensors metadata key that marks a text encoder file


class TextEncoder(nn.Module):
    """(B, TEXT_BYTES) uint8 cache rows -> (B, dim) float32 features; subclasses implement `embed`."""

    start = "text"
    dim = 0
    rows_per_call = 256  # cache rows the features service hands `forward` at a time

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.embed(texts_of(rows.cpu().numpy())))

    def embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def file_config(self) -> dict[str, Any]:
        """What the file's header keeps (JSON): `start`, `dim` and whatever the start needs to rebuild it."""
        return {"start": self.start, "dim": int(self.dim)}

    def tensors(self) -> dict[str, torch.Tensor]:
        """The arrays the file keeps (none for a model shipped in a package)."""
        return {}

    def graph(self) -> nn.Module:
        """The encoder as one torch module from its model inputs (`graph_inputs`) to the same vectors
        `embed` gives: what an export chains the classifier's head onto, for ONNX."""
        raise NotImplementedError

    def graph_config(self) -> dict[str, Any]:
        """What rebuilds `graph` from its saved tensors (JSON: `start` and e.g. the network's shape);
        `sslapp.models.text.graph_from_config` reads it back."""
        raise NotImplementedError

    def graph_spec(self) -> GraphSpec:
        """What `graph` reads and what an export writes beside it so the inputs can be made without sslapp."""
        raise NotImplementedError


@dataclass
class GraphSpec:
    """A text encoder's graph, as an export needs it: its inputs (name -> dtype, in call order, each
    (batch, axis 1) with axis 1 named in `axes`), a small example batch of them, the files that make the
    inputs from a text (name -> bytes, e.g. tokenizer.json) and model.json's account of those steps."""

    inputs: dict[str, str]
    axes: dict[str, str]  # input name -> the name of its dynamic second axis ("tokens"); absent: fixed
    example: dict[str, np.ndarray]
    files: dict[str, bytes]
    describe: dict[str, Any] = field(default_factory=dict)


COUNTED_WORDS = ("lowercase, then (for non-ASCII texts) NFKD with combining marks dropped, then every match of "
                 "token_pattern (Python `re`); column i counts the word vocabulary[i], other words are not counted")


def counts_graph_spec(start: str, dim: int, vocabulary: list[str], options: dict[str, Any], file_name: str,
                      inside_model: str, **extra: Any) -> GraphSpec:
    """The GraphSpec of an encoder that reads word counts (TF-IDF, Word2Vec + SIF): float32 (batch x words)
    counts of `file_name`'s words, counted with `options`' tokenisation, as model.json says."""
    from sslapp.models.text.terms import TOKENISING

    counts = np.zeros((2, len(vocabulary)), np.float32)
    counts[0, 0], counts[1, -1] = 2, 1
    describe = {"start": start, "dim": int(dim), "vocabulary": file_name, "terms": len(vocabulary),
                **{k: options[k] for k in TOKENISING}, **extra, "words": COUNTED_WORDS, "inside_model": inside_model}
    return GraphSpec(inputs={"counts": "float32"}, axes={}, example={"counts": counts},
                     files={file_name: json.dumps(vocabulary, ensure_ascii=False).encode("utf-8")}, describe=describe)


def write_text_encoder_file(path: str | Path, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """The file itself: `tensors` as safetensors, `config` as JSON under TEXT_KEY in its header."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp,
              metadata={TEXT_KEY: json.dumps(config)})
    tmp.replace(path)


def read_text_encoder_file(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """(config, tensors) of a text encoder file, or None when `path` is another kind of safetensors file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if TEXT_KEY not in meta:
            return None
        return json.loads(meta[TEXT_KEY]), {k: f.get_tensor(k) for k in f.keys()}
