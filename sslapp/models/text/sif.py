"""Word vectors trained on the user's texts, averaged into text vectors the SIF way (Arora, Liang and Ma,
"A Simple but Tough-to-Beat Baseline for Sentence Embeddings", ICLR 2017).

A text's vector is the average of its known words' vectors, each weighted a / (a + p(word)) by its
frequency p in the corpus the vectors were trained on, minus its projection on the corpus' first
principal component (the direction every text shares), at unit length. The words are TF-IDF's
(`terms`: lowercase, accents stripped, `\\b\\w+\\b`), so a text is its word counts: `WordVectors`
computes the vector from counts, the app embeds with it and an export chains the head onto it, like
TF-IDF's `CountVectors`. The file keeps the vectors, weights and component as safetensors and the
vocabulary as JSON in its header: no pickles, and nothing of gensim is needed to embed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from sslapp.models.text.base import GraphSpec, TextEncoder, counts_graph_spec
from sslapp.models.text.terms import OPTIONS, count_vectorizer, term_counts

SIF_A = 1e-3  # the paper's a: words more frequent than about 1 in 1,000 count less
VOCABULARY = "vocabulary.json"
COUNT_BATCH = 256  # texts counted at a time: a dense (batch, words) float32 array


def sif_weights(counts: np.ndarray, a: float = SIF_A) -> np.ndarray:
    """a / (a + p(word)) for each word's corpus count."""
    p = np.asarray(counts, np.float64) / max(float(np.sum(counts)), 1.0)
    return (a / (a + p)).astype(np.float32)


class WordVectors(nn.Module):
    """Word counts (batch, words) -> unit-length SIF text vectors; a text with no known word is all zeros."""

    def __init__(self, vectors: torch.Tensor, weights: torch.Tensor, component: torch.Tensor):
        super().__init__()
        self.register_buffer("weighted", (vectors.float() * weights.float()[:, None]).clone())
        self.register_buffer("component", component.float().clone())

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        x = (counts @ self.weighted) / counts.sum(1, keepdim=True).clamp(min=1.0)
        x = x - (x @ self.component)[:, None] * self.component[None]
        return nn.functional.normalize(x, dim=1)


def first_component(x: np.ndarray) -> np.ndarray:
    """The unit first right singular vector of `x` (not centred, as in the paper); zeros for an all-zero x."""
    x = np.asarray(x, np.float64)
    if not np.any(x):
        return np.zeros(x.shape[1], np.float32)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return vt[0].astype(np.float32)


class SifVectors(TextEncoder):
    """Texts -> unit-length (N, dim) SIF averages of word vectors trained on the user's texts."""

    start = "word2vec"
    rows_per_call = 1024

    def __init__(self, vocabulary: list[str], vectors: np.ndarray, weights: np.ndarray,
                 component: np.ndarray | None = None, options: dict[str, Any] | None = None,
                 info: dict[str, Any] | None = None):
        super().__init__()
        if not (len(vocabulary) == len(vectors) == len(weights)):
            raise ValueError(f"word vectors need one vector and one weight per word: {len(vocabulary)} words, "
                             f"{len(vectors)} vectors, {len(weights)} weights")
        self.vocabulary, self.options = list(vocabulary), dict(options or OPTIONS)
        self.info = dict(info or {})  # how the vectors were trained (method, epochs, ...), for the file
        self.dim = int(vectors.shape[1])
        self._vectors = torch.from_numpy(np.ascontiguousarray(vectors, np.float32))
        self._weights = torch.from_numpy(np.ascontiguousarray(weights, np.float32))
        self._counter = count_vectorizer(self.options, self.vocabulary)
        zero = torch.zeros(self.dim)
        self.module = WordVectors(self._vectors, self._weights, zero)
        if component is None:  # the corpus' common direction, from the texts it is fitted on later
            component = np.zeros(self.dim, np.float32)
        self.module.component.copy_(torch.from_numpy(np.asarray(component, np.float32)))

    def fit_component(self, texts: list[str]) -> SifVectors:
        """Set the common component from these texts' weighted averages (the paper's step 2)."""
        self.module.component.zero_()
        self.module.component.copy_(torch.from_numpy(first_component(self._raw(texts))))
        return self

    def _raw(self, texts: list[str]) -> np.ndarray:
        """Weighted averages before the component is removed (not normalised)."""
        out = np.zeros((len(texts), self.dim), np.float32)
        for start in range(0, len(texts), COUNT_BATCH):
            counts = torch.from_numpy(term_counts(self._counter, texts[start:start + COUNT_BATCH]))
            out[start:start + len(counts)] = ((counts @ self.module.weighted)
                                              / counts.sum(1, keepdim=True).clamp(min=1.0)).numpy()
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), COUNT_BATCH):
                counts = torch.from_numpy(term_counts(self._counter, texts[start:start + COUNT_BATCH]))
                out[start:start + len(counts)] = self.module(counts).numpy()
        return out

    def file_config(self) -> dict[str, Any]:
        return {**super().file_config(), "options": self.options, "vocabulary": self.vocabulary,
                "terms": len(self.vocabulary), "sif_a": SIF_A, **self.info}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"vectors": self._vectors, "weights": self._weights, "component": self.module.component}

    @classmethod
    def from_file(cls, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> SifVectors:
        info = {k: v for k, v in config.items() if k not in ("start", "dim", "options", "vocabulary", "terms", "sif_a")}
        return cls(config["vocabulary"], tensors["vectors"].numpy(), tensors["weights"].numpy(),
                   tensors["component"].numpy(), config["options"], info)

    def graph(self) -> nn.Module:
        return self.module

    def graph_config(self) -> dict[str, Any]:
        return {"start": self.start, "options": self.options, "vocabulary": self.vocabulary, "dim": self.dim}

    def graph_spec(self) -> GraphSpec:
        """Word counts (float32, batch x words) of vocabulary.json's words, the tokenisation in model.json."""
        return counts_graph_spec(self.start, self.dim, self.vocabulary, self.options, VOCABULARY,
                                 f"the average of the counted words' vectors, each weighted a / (a + p(word)) (a = "
                                 f"{SIF_A:g}, p its frequency in the workspace's texts), minus its projection on the "
                                 "texts' first principal component, l2 norm (SIF)", **self.info)
