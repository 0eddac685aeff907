"""A text model the user brought: a sentence-transformers or Hugging Face folder, copied into the workspace
(`sslapp.models.text.local_files`), embedding texts as the shipped MiniLM does (`transformer.TokenEncoder`).

The encoder file names the copy (a folder beside it) and the sha256 of its files, recorded when it was
added; every load checks them first, so a changed file is refused before transformers reads it. The network
is built by transformers' AutoModel from config.json, offline (`local_files_only`, no hub kernels, never the
model's own code) and in float32, with weights only from model.safetensors; a network transformers cannot
build, or weights that leave part of it unset, is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from sslapp.models.text.base import GraphSpec
from sslapp.models.text.local_files import CONFIG, TOKENIZER, LocalModelError, verify_copy
from sslapp.models.text.tokens import load_tokenizer
from sslapp.models.text.transformer import TokenEncoder, TokenVectors, accepts, quiet_loading


def _model_class(config) -> type:
    """transformers' AutoModel class for `config`; LocalModelError when it has none or it is no text encoder."""
    from transformers import AutoModel

    if getattr(config, "is_encoder_decoder", False):
        raise LocalModelError(f"a {config.model_type} model is an encoder-decoder; sslapp reads encoders that "
                              "give one hidden state per word piece (BERT, RoBERTa, XLM-R, MPNet, ...)")
    try:
        return AutoModel._model_mapping[type(config)]
    except KeyError:
        raise LocalModelError(f"transformers has no AutoModel for model_type {config.model_type!r}, so it cannot "
                              "build this network offline") from None


def _build_kwargs(cls: type) -> dict[str, Any]:
    """No pooler where the model has one: the vectors are pooled hidden states, its weights would only ride along."""
    return {"add_pooling_layer": False} if accepts(cls.__init__, "add_pooling_layer") else {}


def load_network(folder: Path) -> nn.Module:
    """The network in `folder` (hashes checked by the caller), float32, in eval mode."""
    import transformers
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        raise LocalModelError(f"transformers {transformers.__version__} cannot read {folder / CONFIG}: {exc}") from None
    cls = _model_class(config)
    try:
        with quiet_loading():  # use_kernels=False: transformers 5 would otherwise look for hub kernels
            model, info = cls.from_pretrained(str(folder), config=config, local_files_only=True, use_safetensors=True,
                                              use_kernels=False, dtype=torch.float32, output_loading_info=True,
                                              **_build_kwargs(cls))
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        why = str(exc)
        if "mismatched" in why:  # transformers' own words point at a report it logged, not at the cause
            why = "model.safetensors holds weights of other shapes than config.json describes: the folder's files " \
                  "do not belong together"
        raise LocalModelError(f"transformers could not build a {config.model_type} network from these weights: "
                              f"{why}") from None
    missing = [k for k in info.get("missing_keys") or [] if not k.startswith("pooler.")]
    if missing or info.get("mismatched_keys"):
        what = missing or [str(k) for k in info["mismatched_keys"]]
        raise LocalModelError(f"model.safetensors does not fill the {cls.__name__} that config.json describes "
                              f"({len(what)} weights missing or of another shape, e.g. {what[0]}); the vectors would "
                              "be random")
    return model.float().eval()


def token_vectors_from_config(config: dict[str, Any]) -> TokenVectors:
    """An untrained `TokenVectors` as `LocalModel.graph_config` describes it, for saved weights."""
    from transformers import AutoConfig

    shape = AutoConfig.for_model(**config["network"])
    cls = _model_class(shape)
    with quiet_loading():
        network = cls._from_config(shape, dtype=torch.float32, **_build_kwargs(cls))
    return TokenVectors(network.float(), config["pooling"], config["normalize"], config["token_types"]).eval()


class LocalModel(TokenEncoder):
    """Sentence vectors from the user's model folder, copied to `folder`; `config` is its encoder file's
    header (`file_config`): name, pooling, normalize, max_tokens, pad_id and the copy's sha256."""

    start = "local"

    def __init__(self, folder: str | Path, config: dict[str, Any]):
        super().__init__()
        folder = Path(folder)
        verify_copy(folder, config["sha256"], config["name"])
        network = load_network(folder)
        self.folder, self.config = folder, dict(config)
        self.dim = int(network.config.hidden_size)
        self.vectors = TokenVectors(network, config["pooling"], config["normalize"],
                                    accepts(network.forward, "token_type_ids"))
        self.tokenizer = load_tokenizer(folder / TOKENIZER, int(config["max_tokens"]))
        self.pad_id = int(config["pad_id"])

    @classmethod
    def from_file(cls, config: dict[str, Any], path: str | Path) -> LocalModel:
        """The encoder the file at `path` names: its copy lies in the folder `config["folder"]` beside it."""
        return cls(Path(path).parent / config["folder"], config)

    def file_config(self) -> dict[str, Any]:
        return {**self.config, "dim": self.dim}

    def graph_config(self) -> dict[str, Any]:
        return {"start": self.start, "network": self.bert.config.to_dict(), "pooling": self.vectors.pooling,
                "normalize": self.vectors.normalize, "token_types": self.vectors.token_types}

    def graph_spec(self) -> GraphSpec:
        """Token ids and attention mask (int64, batch x tokens) from the folder's tokenizer.json, copied as is."""
        c = self.config
        network = f"transformers' {self.bert.__class__.__name__}"
        types = " (token type ids all 0)" if self.vectors.token_types else ""
        norm = ", L2 normalisation" if self.vectors.normalize else ""
        describe = {"start": self.start, "model": c["name"], "name": c["name"],
                    "source": c.get("source"), "layout": c.get("layout"), "model_type": c["model_type"],
                    "dim": self.dim, "tokenizer_sha256": c["sha256"][TOKENIZER],
                    "weights_sha256": c["sha256"]["model.safetensors"],
                    "inside_model": f"{network}{types}, {self.vectors.pooling} pooling{norm}: the app's vectors of "
                                    f"your model '{c['name']}'",
                    "note": f"{TOKENIZER} is the model folder's file byte for byte; cut at {c['max_tokens']} word "
                            f"pieces and pad with id {self.pad_id} to the batch's longest text, whatever the file's "
                            "own truncation and padding settings say, as predict_onnx.py does"}
        return self.token_graph_spec(self.folder / TOKENIZER, int(c["max_tokens"]), describe)
