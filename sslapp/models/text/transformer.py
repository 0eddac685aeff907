"""Transformer sentence encoders over word pieces, whichever the network: the shipped all-MiniLM-L6-v2
(`minilm.py`) and a folder the user brings (`local.py`) are both a `TokenEncoder`.

The network, its pooling and its normalisation are one module (`TokenVectors`): the app embeds with it and
an export chains the classifier's head onto it, so both compute the same vectors. Pooling follows
sentence-transformers' Pooling module: the mean of the last hidden states over the attention mask, the first
token's ([CLS]), or their max over the attention mask (padding set to -1e9 first). Texts are sorted by length
and padded per batch with the tokenizer's pad id (`tokens.padded_batches`), so a short text never waits on a
long one's padding; the attention mask keeps padding out of every vector.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sslapp.models.text.base import GraphSpec, TextEncoder
from sslapp.models.text.tokens import TOKEN_BUDGET, pad_ids, padded_batches

POOLINGS = {"mean": "mean of the last hidden states over the attention mask",
            "cls": "the first token's last hidden state ([CLS])",
            "max": "max of the last hidden states over the attention mask"}
# Texts are sorted by length within each call, so calls of 1,024 rows pad less than the usual 256
# (2,000 banking77 texts on 2 cores: 311-325 texts/s against 230-240 in calls of 256, and 159-168
# unsorted in batches of 32; benchmarks/bench_text_embed.py); at most 64 texts and TOKEN_BUDGET word
# pieces (padding included) per forward pass.
ROWS_PER_CALL = 1024
TOKENIZER = "tokenizer.json"


class TokenVectors(nn.Module):
    """Word pieces -> sentence vectors: the transformer (`bert`: BERT or any model that returns
    `last_hidden_state`), pooling (`POOLINGS`), then L2 normalisation when `normalize` (sentence-transformers'
    Transformer, Pooling and Normalize modules). `token_types`: the network reads token type ids (all 0)."""

    def __init__(self, bert: nn.Module, pooling: str = "mean", normalize: bool = True, token_types: bool = True):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        self.bert = bert
        self.pooling, self.normalize, self.token_types = pooling, bool(normalize), bool(token_types)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        types = {"token_type_ids": torch.zeros_like(input_ids)} if self.token_types else {}
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, **types).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "max":
            keep = attention_mask.unsqueeze(-1) > 0
            pooled = torch.where(keep, hidden, torch.full_like(hidden, -1e9)).amax(dim=1)
        else:
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2, dim=1) if self.normalize else pooled


def accepts(function: Callable[..., Any], name: str) -> bool:
    """Whether `function` takes an argument called `name` (e.g. a model's forward and token_type_ids)."""
    return name in inspect.signature(function).parameters


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers without its "Loading weights" bar and its notes on unused weights (the pooler), which
    would print on every load; errors still raise."""
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


class TokenEncoder(TextEncoder):
    """A text encoder that is a `TokenVectors` over a `tokenizers` tokenizer: subclasses set `vectors`,
    `tokenizer` (cut at their word-piece limit, unpadded), `pad_id`, `sort` and `token_budget`."""

    rows_per_call = ROWS_PER_CALL
    pad_id = 0
    sort = True
    token_budget = TOKEN_BUDGET
    vectors: TokenVectors

    @property
    def bert(self) -> nn.Module:
        return self.vectors.bert

    def embed(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32 sentence vectors, as sentence-transformers computes them."""
        out = np.zeros((len(texts), self.dim), np.float32)
        device = next(self.bert.parameters()).device
        with torch.inference_mode():
            for rows, ids, mask in padded_batches(self.tokenizer, texts, self.token_budget, self.sort, self.pad_id):
                v = self.vectors(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
                out[rows] = v.float().cpu().numpy()
        return out

    def graph(self) -> nn.Module:
        return self.vectors

    def token_graph_spec(self, tokenizer_file: Path, max_tokens: int, describe: dict[str, Any]) -> GraphSpec:
        """Token ids and attention mask (int64, batch x tokens) from `tokenizer_file`, copied as is, with
        model.json's account of the steps (`describe` adds who the model is and what runs inside it)."""
        ids, mask = pad_ids([e.ids for e in self.tokenizer.encode_batch(["hello world", "hello"])], self.pad_id)
        pad_token = self.tokenizer.id_to_token(self.pad_id) or "[PAD]"  # the id is what counts
        steps = {"tokenizer": tokenizer_file.name, "max_length": int(max_tokens),
                 "truncation": f"the first {max_tokens} word pieces, special tokens included",
                 "padding": f"pad id {self.pad_id} to the batch's longest text, attention mask 0 on the padding",
                 "pad_id": int(self.pad_id), "pad_token": pad_token,
                 "token_type_ids": "all 0, inside the model" if self.vectors.token_types else "none (the model "
                                   "reads none)",
                 "pooling": POOLINGS[self.vectors.pooling],
                 "normalisation": "l2 (unit-length sentence vectors)" if self.vectors.normalize else "none"}
        return GraphSpec(inputs={"input_ids": "int64", "attention_mask": "int64"},
                         axes={"input_ids": "tokens", "attention_mask": "tokens"},
                         example={"input_ids": ids, "attention_mask": mask},
                         files={tokenizer_file.name: tokenizer_file.read_bytes()}, describe={**steps, **describe})
