"""The item contract: what every kind of item (image, text, sound) tells the rest of sslapp.

Upstream of features, code asks the workspace's modality how to read, decode, cache and show an
item; downstream of features everything works on vectors and item ids and never asks. A modality
is one `Modality` value in its own module, registered by name in `sslapp.modalities.MODALITIES`:

- which files it reads (`extensions`) and how one file becomes one item or many (`decode`), with a
  reason for each bad file (`BadItem`) or bad part of a file (`Decoded.error`);
- how an item is cached for fast batches (`cache_row`: the shape and dtype of one row);
- how cache rows become a model's input (`model_input`), the cheap first-look embedding
  (`quick_features`) and the fingerprints that confirm near-duplicates (`fingerprints`);
- its starting encoders, made without a training loop (`starting_encoders`, names the features
  service builds), and the SSL methods that apply to it (`ssl_methods`) with the views they are
  trained on (`views`, a "module:function" target); none yet: `pretrain_refusal` says so;
- whether sslapp fine-tunes its encoders whole (`full_finetune`; when not, a classifier is a linear
  head on a starting encoder's frozen vectors and `--mode full` is refused), whether a classifier
  exports as one model that reads the item (`exports_models`; when not, the export refuses with
  `export_refusal`'s message), and which model formats and optional parts its export offers
  (`export_formats`, `export_extras`; `export_option_refusal` says why another one is not);
- which starting encoder to trust before labels can measure them (`prior_order`), the label-efficiency
  benchmark's cheap baseline (`baseline`), and the words that name a map's clusters (`cluster_words`,
  texts only);
- the cache size a workspace of this kind always has (`fixed_cache_size`: sounds' log-mel picture);
- how an item is previewed in the UI (`preview`: "thumbnail", "text" or "audio");
- the preprocessing an export needs and the exported model's input (`preprocessing`, `input_spec`,
  written into model.json).
Nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BASELINE_DIM = 50  # a modality without its own baseline: its quick features at this many dimensions


class BadItem(ValueError):
    """An input that is not a usable item; `kind` is a short class ("not-an-image", "empty"), str() the
    reason a person reads."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


@dataclass
class Decoded:
    """One item decoded from a file (a file may hold many: rows of a table, windows of a recording):
    its cache row, a preview file's bytes and facts the store keeps; or, for one bad part of a file
    that holds many, `error` ("kind: reason") and no row."""

    row: np.ndarray | None  # shape and dtype of `Modality.cache_row(size)`; None with `error`
    preview: bytes | None = None  # e.g. a JPEG thumbnail, written under the workspace's thumbs/
    # e.g. {"width", "height", "format", "ext"}; "note": a line about this item for the ingest report (a text
    # cut in the cache), "file_notes": lines about its whole file (e.g. which column held the texts)
    info: dict[str, Any] = field(default_factory=dict)
    part: str = ""  # where in the file, for a file of many items ("12": row 12); the source is FILE:part
    label: str | None = None  # a label the file itself gives this item (e.g. a label column)
    key: bytes | None = None  # what makes two items the same (exact duplicates); default: the file's bytes
    error: str | None = None  # this part is bad: "kind: reason"; it is skipped and reported


@dataclass(frozen=True)
class Modality:
    """One kind of item, as the rest of sslapp sees it (see the module docstring)."""

    name: str  # "image": the workspace setting `modality` holds this
    noun: str  # "image": one item, in messages
    plural: str  # "images"
    extensions: frozenset[str]  # lower-case file suffixes it reads, with the dot
    # (file bytes, cache size, options) -> its items; raises BadItem when the whole file is unusable.
    # options: what the user said about the files (e.g. a text column), and "ext", the file's lower-case
    # suffix ("" when it has none); a modality ignores the rest.
    decode: Callable[[bytes, int, Mapping[str, Any]], list[Decoded]]
    cache_row: Callable[[int], tuple[tuple[int, ...], str]]  # cache size -> (row shape, numpy dtype)
    model_input: Callable[[np.ndarray], np.ndarray]  # cache rows (B, ...) -> the encoders' input batch
    preprocessing: Callable[[int], dict[str, Any]]  # cache size -> model.json's preprocessing fields
    input_spec: Callable[[int], dict[str, Any]]  # cache size -> the exported model's input (shape, dtype, ...)
    # (cache, rows or None, dim, seed) -> (N, dim) float32: the cheap first-look embedding, no encoder
    quick_features: Callable[[np.ndarray, np.ndarray | None, int, int], np.ndarray]
    # cache rows (B, ...) -> (hashes (B, 2) uint64, profiles (B, 64) float32) that confirm near-duplicates:
    # a pair is a copy when its hashes nearly agree and its profiles correlate (sslapp.curate.duplicates)
    fingerprints: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    starting_encoders: tuple[str, ...]  # built by sslapp.features.service without a training loop
    ssl_methods: tuple[str, ...]  # names in sslapp.ssl.methods.METHODS that train on this kind
    views: str  # "module:function" that makes the training views of a batch of cache rows
    preview: str  # how the pages show one item: "thumbnail", "text" or "audio"
    preview_ext: str = ""  # the preview file's suffix under thumbs/ (".jpg"), "" when there is none
    original_exts: frozenset[str] = frozenset()  # suffixes an original keeps (others get a format's)
    one_item_per_file: bool = True  # False: files hold many items, told apart by Decoded.part and .key
    full_finetune: bool = True  # False: a classifier is a head on frozen vectors; no `--mode full`
    exports_models: bool = True  # False: no model export (`export_refusal`), only labels and vectors
    export_formats: tuple[str, ...] = ("onnx", "torchscript", "safetensors")  # names in sslapp.export.manifest
    # optional parts of an export: "encoder" (the encoder alone, --encoder-files / --encoder-only),
    # "quantize" (an fp16/int8 ONNX copy), "imagefolder" (the labelled originals in class folders)
    export_extras: frozenset[str] = frozenset({"encoder", "quantize", "imagefolder"})
    # the starting encoders in the order the app trusts them before labels can measure them, given the
    # cache (images: pixels first when they are grayscale); None: `starting_encoders` is that order
    prior_order: Callable[[np.ndarray], tuple[str, ...]] | None = None
    # the label-efficiency benchmark's cheap baseline, which needs no model: its name in the tables and
    # (cache, rows, seed) -> features; None: "first-look", the `quick_features` at BASELINE_DIM
    baseline: tuple[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] | None = None
    # (cache, rows, the map cluster of each row, how many) -> {cluster: its most distinctive words}, which
    # name the map's clusters; None: clusters are numbered only (a picture's words are not in its pixels)
    cluster_words: Callable[[np.ndarray, np.ndarray, np.ndarray, int], dict[int, list[str]]] | None = None
    # the cache size (px) a workspace of this kind always has, whatever was asked (sounds: their log-mel
    # picture's side); None: the workspace's own setting
    fixed_cache_size: int | None = None

    def start_order(self, cache: np.ndarray) -> tuple[str, ...]:
        """The starting encoders, most trusted first, before labels can measure them (see `prior_order`)."""
        return self.prior_order(cache) if self.prior_order is not None else self.starting_encoders

    def baseline_features(self, cache: np.ndarray, rows: np.ndarray, seed: int = 0) -> tuple[str, np.ndarray]:
        """(name, features) of the cheap baseline the label-efficiency benchmark compares against."""
        if self.baseline is None:
            return "first-look", self.quick_features(cache, rows, BASELINE_DIM, seed)
        name, make = self.baseline
        return name, make(cache, rows, seed)

    def reads(self, name: str) -> bool:
        """Whether a file called `name` is of this kind, by its suffix."""
        dot = name.rfind(".")
        return dot >= 0 and name[dot:].lower() in self.extensions


START_NAMES = {"minilm": "MiniLM", "tfidf": "TF-IDF", "imagenet": "ImageNet", "patches": "patches",
               "pixels": "pixels", "mfcc": "MFCC"}  # a starting encoder's name in messages


def pretrain_refusal(modality: Modality) -> str | None:
    """Why the workspace cannot pretrain (no SSL method trains on its kind), with what to do; None when it can."""
    if modality.ssl_methods:
        return None
    starts = " / ".join(START_NAMES.get(s, s) for s in modality.starting_encoders)
    return (f"no self-supervised method trains on {modality.plural} yet. The app embeds {modality.plural} with "
            f"{starts}, which need no training: go on with `sslapp embed WS` (or the Explore page), label, and "
            "train a classifier (`sslapp finetune WS` or the Train page).")


def method_refusal(modality: Modality, method: str) -> str | None:
    """Why `method` cannot pretrain on this kind of item (unknown, or made for another kind), naming the
    methods that can; None when it can."""
    if method in modality.ssl_methods:
        return None
    return (f"{method!r} does not train on {modality.plural}; choose one of: {', '.join(modality.ssl_methods)} "
            "(`sslapp pretrain WS --method NAME`, or the Pretrain page).")


def export_refusal(modality: Modality) -> str | None:
    """Why no model of this kind can be exported (`exports_models` False), with what to use instead; else None."""
    if modality.exports_models:
        return None
    return (f"exporting a {modality.noun} classifier is not built yet; use `sslapp labels WS --export FILE` for "
            "the labels and `sslapp embeddings export WS FILE` for the vectors.")


EXTRA_OPTIONS = {"encoder": "--encoder-files / --encoder-only (the encoder alone)",
                 "quantize": "--quantize (a smaller ONNX copy)", "imagefolder": "--imagefolder (class folders)"}


def export_option_refusal(modality: Modality, formats: tuple[str, ...] = (), extras: tuple[str, ...] = ()) -> str | None:
    """Why an export of this kind cannot have these model `formats` or optional parts (`extras`, keys of
    EXTRA_OPTIONS), naming what it offers; None when it can. Checked before anything is written."""
    formats_out = [f for f in formats if f not in modality.export_formats]
    extras_out = [EXTRA_OPTIONS[e] for e in extras if e not in modality.export_extras]
    if not formats_out and not extras_out:
        return None
    offered = ", ".join(modality.export_formats)
    what = " and ".join(filter(None, [", ".join(formats_out) and f"the format(s) {', '.join(formats_out)}",
                                      "; ".join(extras_out)]))
    return (f"a {modality.noun} classifier export does not offer {what} yet; it writes the classifier "
            f"({offered}) with the labels and a model card. Export again without them.")


def preview_file(previews_dir: str | os.PathLike[str], sha256: str, ext: str = ".jpg") -> str:
    """An item's preview (thumbnail) file, named by its content hash in one of 256 folders (first two
    hex digits): the one place the layout is written, for ingestion that writes it and the pages that
    read it."""
    return os.path.join(previews_dir, sha256[:2], f"{sha256}{ext}")


def gather_rows(images: np.ndarray, rows: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    """A chunk of cache rows, gathered from a memmap without reading the rest of it."""
    if rows is None:
        return np.asarray(images[start:stop])
    return np.asarray(images[np.sort(rows[start:stop])])[np.argsort(np.argsort(rows[start:stop]))]
