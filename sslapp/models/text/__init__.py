"""Text encoders made without a training loop: all-MiniLM-L6-v2 shipped frozen (`minilm`) and
TF-IDF + SVD fitted on the user's texts (`tfidf`). Each is an encoder artifact file like the image
encoders (`sslapp.models.encoder.load_encoder` opens both kinds)."""

from __future__ import annotations

from pathlib import Path

from sslapp.models.text.base import TEXT_KEY, TextEncoder, read_text_encoder_file, save_text_encoder

__all__ = ["TEXT_KEY", "TextEncoder", "load_text_encoder", "save_text_encoder"]


def load_text_encoder(path: str | Path) -> TextEncoder:
    """The text encoder saved at `path` (its header names the start); ValueError for another file."""
    read = read_text_encoder_file(path)
    if read is None:
        raise ValueError(f"{path} is not an sslapp text encoder file (no {TEXT_KEY} metadata)")
    config, tensors = read
    if config.get("start") == "minilm":
        from sslapp.models.text.minilm import MiniLM

        return MiniLM.from_file(config).eval()
    if config.get("start") == "tfidf":
        from sslapp.models.text.tfidf import TfidfSVD

        return TfidfSVD.from_file(config, tensors).eval()
    raise ValueError(f"{path} holds a text encoder of an unknown kind {config.get('start')!r}; a newer sslapp made it")
