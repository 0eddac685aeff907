"""Text encoders: all-MiniLM-L6-v2 shipped frozen (`minilm`) or tuned on the user's texts by a pretraining
run (SimCSE), TF-IDF + SVD fitted on the user's texts (`tfidf`), word vectors trained on them, averaged
the SIF way (`word2vec`, `sif`), and a sentence-transformers or Hugging Face folder the user brought (`local`).
Each is an encoder artifact file like the image encoders (`sslapp.models.encoder.load_encoder` opens both kinds).

Importing this package loads no torch: `tokens` (tokenise, sort, pad) and `terms` (TF-IDF's word
counts) serve `sslapp predict` too, which runs an exported model with onnxruntime alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor, nn

    from sslapp.models.text.base import TextEncoder

__all__ = ["graph_from_config", "load_text_encoder", "save_text_encoder"]


def save_text_encoder(encoder: TextEncoder, path: str | Path) -> None:
    """Write `encoder` to `path` atomically (temp file, then rename)."""
    from sslapp.models.text.base import write_text_encoder_file

    write_text_encoder_file(path, encoder.file_config(), encoder.tensors())


def load_text_encoder(path: str | Path) -> TextEncoder:
    """The text encoder saved at `path` (its header names the start); ValueError for another file."""
    from sslapp.models.text.base import TEXT_KEY, read_text_encoder_file

    read = read_text_encoder_file(path)
    if read is None:
        raise ValueError(f"{path} is not an sslapp text encoder file (no {TEXT_KEY} metadata)")
    config, tensors = read
    if config.get("start") == "minilm":
        from sslapp.models.text.minilm import MiniLM

        return MiniLM.from_file(config, tensors).eval()
    if config.get("start") == "local":
        from sslapp.models.text.local import LocalModel

        return LocalModel.from_file(config, path).eval()
    if config.get("start") == "tfidf":
        from sslapp.models.text.tfidf import TfidfSVD

        return TfidfSVD.from_file(config, tensors).eval()
    if config.get("start") == "word2vec":
        from sslapp.models.text.sif import SifVectors

        return SifVectors.from_file(config, tensors).eval()
    raise ValueError(f"{path} holds a text encoder of an unknown kind {config.get('start')!r}; a newer sslapp made it")


def graph_from_config(config: dict[str, Any], state: dict[str, Tensor]) -> nn.Module:
    """A text encoder's graph (`TextEncoder.graph`) rebuilt from its `graph_config` and its state dict."""
    if config.get("start") == "minilm":
        from sslapp.models.text.minilm import token_vectors_from_config

        module = token_vectors_from_config(config["bert"])
    elif config.get("start") == "local":
        from sslapp.models.text.local import token_vectors_from_config as local_vectors

        module = local_vectors(config)
    elif config.get("start") == "tfidf":
        from sslapp.models.text.tfidf import CountVectors

        module = CountVectors(state["idf"], state["components"])
    elif config.get("start") == "word2vec":
        import torch

        from sslapp.models.text.sif import WordVectors

        module = WordVectors(state["weighted"], torch.ones(len(state["weighted"])), state["component"])
    else:
        raise ValueError(f"a text encoder graph of an unknown kind {config.get('start')!r}; a newer sslapp made it")
    module.load_state_dict(state)
    return module.eval()
