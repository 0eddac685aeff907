"""Texts: .txt files (one text each) and tables (CSV, TSV, JSON Lines, Parquet: one text per row), cached as
whitespace-normalised UTF-8 in fixed-width uint8 rows (`arrays`), shown as text, with a TF-IDF first map."""

from __future__ import annotations

from typing import Any

import numpy as np

from sslapp.modalities.base import Modality
from sslapp.modalities.text.arrays import TEXT_BYTES
from sslapp.modalities.text.decode import EXTENSIONS, decode_items
from sslapp.modalities.text.fingerprint import fingerprints
from sslapp.modalities.text.quick import tfidf_svd
from sslapp.modalities.text.topics import cluster_words

STEPS = [
    "Read the file as UTF-8 (a byte-order mark is dropped; UTF-16 with a byte-order mark is read as UTF-16). "
    "A .txt file is one text; a CSV, TSV, JSON Lines or Parquet file gives one text per row from its text "
    "column.",
    "Normalise whitespace: every run of whitespace becomes one space, NUL characters are dropped, and the "
    "ends are stripped (Python: re.sub(r'\\s+', ' ', text.replace('\\x00', ' ')).strip()).",
    f"Encode as UTF-8 and keep at most the first {TEXT_BYTES:,} bytes, cut at a character boundary.",
]


def cache_row(size: int) -> tuple[tuple[int, ...], str]:
    """One text a row, whatever the workspace's cache size (a size in pixels means nothing to a text)."""
    return (TEXT_BYTES,), "uint8"


def model_input(rows: np.ndarray) -> np.ndarray:
    """uint8 (B, TEXT_BYTES) rows as they are: text encoders read them back with `arrays.texts_of`."""
    arr = np.asarray(rows)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"expected uint8 text rows (B, {TEXT_BYTES}), got {arr.dtype} {arr.shape}")
    return arr


def preprocessing(size: int) -> dict[str, Any]:
    """model.json's account of file -> text the encoder reads: fields and numbered steps."""
    return {"encoding": "utf-8", "whitespace": "collapsed to single spaces, ends stripped, NUL dropped",
            "max_bytes": TEXT_BYTES, "cut": "at a character boundary", "dtype": "uint8", "steps": list(STEPS)}


BASELINE_DIMS = 256  # TF-IDF + SVD: the text baseline (more dimensions than pixels need: a vocabulary is wide)


def tfidf_baseline(cache: np.ndarray, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """The label-efficiency benchmark's text baseline ("tfidf"): TF-IDF + SVD at BASELINE_DIMS."""
    return tfidf_svd(cache, rows, dim=BASELINE_DIMS, seed=seed)


def input_spec(size: int) -> dict[str, Any]:
    """What an exported text model reads, before its encoder's own step (token ids from tokenizer.json for
    MiniLM, term counts for TF-IDF: the export's `text_encoder` entry adds which)."""
    return {"kind": "text", "text": f"UTF-8, whitespace normalised, at most the first {TEXT_BYTES:,} bytes"}


def quick_features(cache: np.ndarray, rows: np.ndarray | None, dim: int, seed: int) -> np.ndarray:
    return tfidf_svd(cache, rows, dim=dim, seed=seed)


TEXT = Modality(
    name="text", noun="text", plural="texts", extensions=EXTENSIONS, decode=decode_items, cache_row=cache_row,
    model_input=model_input, preprocessing=preprocessing, input_spec=input_spec,
    quick_features=quick_features, fingerprints=fingerprints,
    starting_encoders=("minilm", "tfidf"),  # also the prior: the sentence model before word counts
    ssl_methods=("simcse", "word2vec", "mlm", "mlm-scratch"), views="", preview="text", preview_ext="",
    original_exts=EXTENSIONS, one_item_per_file=False, full_finetune=False,
    export_formats=("onnx", "safetensors"), export_extras=frozenset(), baseline=("tfidf", tfidf_baseline),
    cluster_words=cluster_words,
)
