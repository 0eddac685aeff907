"""Classify files with an export's ONNX model through onnxruntime. No torch on this path.

Files are read and decoded exactly as ingestion does (`sslapp.ingest.sources` and the workspace kind's
decoder: `sslapp.modalities.image.decode`, the text decoders for .txt files and tables, or the sound
decoder, which cuts a recording into windows), so an item gives the same input here as in the app's
cache, and so the same probabilities. Items that are parts of a file (a table's rows, a long
recording's windows) are named FILE:PART, as the workspace names their sources. Unreadable files and
bad parts are reported one by one and skipped; the others are still classified.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sslapp.export.manifest import (
    ONNX_INPUT,
    ExportError,
    read_manifest,
    require_onnx_classifier,
    verify_checksum,
)
from sslapp.export.onnx_session import cpu_session
from sslapp.export.text_inputs import TextInputs, text_probabilities
from sslapp.ingest.sources import SourceItem, iter_sources
from sslapp.modalities import BadItem, Decoded, ModalityError, get_modality
from sslapp.modalities.image.arrays import to_nchw_float
from sslapp.modalities.image.decode import BadImage, decode_image

BATCH = 32  # images per run; texts are batched by the text inputs (sorted by length, TF-IDF: 256 a batch)
TEXT_BATCH = 1024


class OnnxClassifier:
    """An export's ONNX classifier with its classes, ready to run; a kind of item says how files become its
    inputs (`decoded`) and how a batch of them becomes probabilities (`batch_probabilities`).

    `model`: which ONNX classifier ("fp32", "int8", "fp16" or a file name in the export); None: the
    export's `predict_model` (the float32 one, or the quantized one when it was exported alone).
    """

    noun, plural, batch = "item", "items", BATCH

    def __init__(self, export_dir: str | os.PathLike, threads: int | None = None, model: str | None = None,
                 manifest: dict[str, Any] | None = None):
        self.export_dir = Path(export_dir)
        self.manifest = manifest or read_manifest(self.export_dir)
        model_path = require_onnx_classifier(self.manifest, self.export_dir, model)
        self.model_file = model_path.name
        verify_checksum(self.export_dir, self.manifest, model_path.name)
        self.classes: list[str] = list(self.manifest["classes"])
        self.session = cpu_session(model_path, threads)

    def decoded(self, paths: Iterable[str | os.PathLike],
                errors: list[dict[str, str]] | None = None) -> Iterator[tuple[str, Any]]:
        raise NotImplementedError

    def batch_probabilities(self, items: list[Any]) -> np.ndarray:
        raise NotImplementedError

    def predict(self, paths: Iterable[str | os.PathLike], top_k: int = 3,
                errors: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
        """[{"path", "class", "confidence", "top_k"}] for every item under `paths`, in their order."""
        return ranked(self.decoded(paths, errors), self.batch_probabilities, self.classes, top_k, self.batch)


class Predictor(OnnxClassifier):
    """An export's ONNX image classifier and its input size."""

    noun, plural = "image", "images"

    def __init__(self, export_dir: str | os.PathLike, threads: int | None = None, model: str | None = None,
                 manifest: dict[str, Any] | None = None):
        super().__init__(export_dir, threads, model, manifest)
        if self.manifest.get("modality", "image") != "image":
            raise ExportError(f"{export_dir} classifies {_plural(self.manifest['modality'])}, not images; use "
                              "`open_predictor` (or `sslapp predict`), which picks the reader for its kind.")
        self.size = int(self.manifest["input"]["size"])

    def probabilities(self, arrays: np.ndarray) -> np.ndarray:
        """Class probabilities (B, C) for uint8 (B, S, S, 3) arrays from the canonical preprocessing."""
        if arrays.ndim != 4 or arrays.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected uint8 arrays (B, {self.size}, {self.size}, 3), got {arrays.shape}")
        return self.session.run(None, {ONNX_INPUT: to_nchw_float(arrays)})[0]

    def decoded(self, paths: Iterable[str | os.PathLike],
                errors: list[dict[str, str]] | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """(name, uint8 array) of every image under `paths`; bad files go to `errors` and are skipped."""
        for item in _readable(paths, errors):
            try:
                yield item.name, decode_image(item.data, self.size)
            except BadImage as exc:
                _report(errors, item.name, f"{exc.kind}: {exc}")
            except MemoryError:
                _report(errors, item.name, "too-large: not enough memory to decode this image")
            except Exception as exc:  # a decoder bug on odd input is still that file's problem only
                _report(errors, item.name, f"corrupt: the decoder failed ({exc.__class__.__name__}: {exc})")

    def batch_probabilities(self, items: list[Any]) -> np.ndarray:
        return self.probabilities(np.stack(items))


class TextPredictor(OnnxClassifier):
    """An export's ONNX text classifier: texts from .txt files and tables' rows (FILE:ROW), read as ingestion
    reads them; `options` as `sslapp ingest` takes them (e.g. "text_column")."""

    noun, plural, batch = "text", "texts", TEXT_BATCH

    def __init__(self, export_dir: str | os.PathLike, threads: int | None = None, model: str | None = None,
                 manifest: dict[str, Any] | None = None, options: Mapping[str, Any] | None = None):
        super().__init__(export_dir, threads, model, manifest)
        self.inputs = TextInputs(self.export_dir, self.manifest["text_encoder"])
        self.options = dict(options or {})

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Class probabilities (N, C) for texts as the cache holds them (`normalise`d, cut at TEXT_BYTES)."""
        return text_probabilities(self.inputs, texts, lambda feeds: self.session.run(None, feeds)[0],
                                  len(self.classes))

    def batch_probabilities(self, items: list[Any]) -> np.ndarray:
        return self.probabilities(items)

    def decoded(self, paths: Iterable[str | os.PathLike],
                errors: list[dict[str, str]] | None = None) -> Iterator[tuple[str, str]]:
        """(FILE:ROW or FILE, text) of every text under `paths`; bad files and rows go to `errors`."""
        from sslapp.modalities.text.arrays import texts_of
        from sslapp.modalities.text.decode import decode_items

        def decode(item: SourceItem) -> list[Decoded]:
            return decode_items(item.data, 0, {**self.options, "ext": item.ext})

        for name, row in _parts(paths, errors, decode):
            yield name, texts_of(row[None])[0]


class AudioPredictor(OnnxClassifier):
    """An export's ONNX sound classifier. Each file is cut into windows and each window drawn as its log-mel
    row exactly as ingestion does (`sslapp.modalities.audio`: its decode, then `model_input`); a recording of
    several windows gives one result per window, named FILE:START ("long.wav:12.288s") as the workspace
    names that item's source."""

    noun, plural = "sound", "sounds"

    def __init__(self, export_dir: str | os.PathLike, threads: int | None = None, model: str | None = None,
                 manifest: dict[str, Any] | None = None):
        from sslapp.modalities.audio import AUDIO

        super().__init__(export_dir, threads, model, manifest)
        self.modality = AUDIO
        require_same_front_end(self.manifest, export_dir)

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities (B, C) for uint8 log-mel rows (B, MELS, FRAMES), as the cache holds them."""
        return self.session.run(None, {ONNX_INPUT: self.modality.model_input(rows)})[0]

    def batch_probabilities(self, items: list[Any]) -> np.ndarray:
        return self.probabilities(np.stack(items))

    def decoded(self, paths: Iterable[str | os.PathLike],
                errors: list[dict[str, str]] | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """(FILE or FILE:START, uint8 log-mel row) of every window of every sound under `paths`; files that
        are not sounds, or bad ones, go to `errors`."""
        size = self.modality.fixed_cache_size

        def decode(item: SourceItem) -> list[Decoded]:
            return self.modality.decode(item.data, size, {"ext": item.ext, "previews": False})

        yield from _parts(paths, errors, decode)


# model.json's preprocessing fields that decide a sound's rows: an export made with other values needs its own code
FRONT_END_FIELDS = ("rate", "window_samples", "n_fft", "hop", "frames", "mels", "f_min", "f_max", "mel_scale",
                    "db_range", "dtype", "scale")


def require_same_front_end(manifest: Mapping[str, Any], export_dir: str | os.PathLike) -> None:
    """ExportError when the export's sounds were drawn by another front end than this sslapp's (model.json's
    preprocessing and input shape): this sslapp's rows would not be the ones the model was made for."""
    from sslapp.modalities.audio import AUDIO

    size = AUDIO.fixed_cache_size
    ours, theirs = AUDIO.preprocessing(size), manifest.get("preprocessing") or {}
    differ = [f for f in FRONT_END_FIELDS if theirs.get(f) != ours[f]]
    if (manifest.get("input") or {}).get("shape") != AUDIO.input_spec(size)["shape"]:
        differ.append("input shape")
    if differ:
        raise ExportError(f"{export_dir} was exported by sslapp {manifest.get('sslapp_version', '?')}, whose sound "
                          f"front end differs from this sslapp's ({', '.join(differ)}); run the export's own "
                          "predict_onnx.py, which carries its front end, or that sslapp version.")


def _parts(paths: Iterable[str | os.PathLike], errors: list[dict[str, str]] | None,
           decode: Callable[[SourceItem], list[Decoded]]) -> Iterator[tuple[str, np.ndarray]]:
    """(FILE or FILE:PART, cache row) of every item of the files under `paths`, which `decode` turns into their
    items (a table's rows, a recording's windows); bad files and bad parts go to `errors`."""
    for item in _readable(paths, errors):
        try:
            parts = decode(item)
        except BadItem as exc:
            _report(errors, item.name, f"{exc.kind}: {exc}")
            continue
        except MemoryError:
            _report(errors, item.name, "too-large: not enough memory to read this file")
            continue
        except Exception as exc:  # a reader bug on odd input is still that file's problem only
            _report(errors, item.name, f"corrupt: the reader failed ({exc.__class__.__name__}: {exc})")
            continue
        for part in parts:
            name = f"{item.name}:{part.part}" if part.part else item.name
            if part.error is not None or part.row is None:
                _report(errors, name, part.error or "unreadable")
            else:
                yield name, part.row


def ranked(decoded: Iterable[tuple[str, Any]], probabilities: Callable[[list[Any]], np.ndarray],
           classes: list[str], top_k: int, batch: int) -> list[dict[str, Any]]:
    """[{"path", "class", "confidence", "top_k": [[class, p], ...]}] for (name, input) pairs, `batch` at a time."""
    results: list[dict[str, Any]] = []
    k = max(1, min(int(top_k), len(classes)))
    names: list[str] = []
    items: list[Any] = []

    def flush() -> None:
        for name, p in zip(names, probabilities(items), strict=True):
            order = np.argsort(-p, kind="stable")[:k]
            results.append({"path": name, "class": classes[int(order[0])], "confidence": float(p[order[0]]),
                            "top_k": [[classes[int(i)], float(p[i])] for i in order]})
        names.clear()
        items.clear()

    for name, item in decoded:
        names.append(name)
        items.append(item)
        if len(items) >= batch:
            flush()
    if items:
        flush()
    return results


def _readable(paths: Iterable[str | os.PathLike], errors: list[dict[str, str]] | None) -> Iterator[SourceItem]:
    """The files under `paths` that could be read (`iter_sources`); the others go to `errors`."""
    for item in iter_sources(paths):
        if item.error is not None or item.data is None:
            _report(errors, item.name, item.error or "unreadable")
        else:
            yield item


def _plural(kind: str) -> str:
    """"sounds" for "audio": a kind of item in messages (one this sslapp does not know keeps its name)."""
    try:
        return get_modality(kind).plural
    except ModalityError:
        return f"{kind} items"


def _report(errors: list[dict[str, str]] | None, name: str, reason: str) -> None:
    if errors is not None:
        errors.append({"path": name, "reason": reason})


def open_predictor(export_dir: str | os.PathLike, model: str | None = None,
                   options: Mapping[str, Any] | None = None) -> OnnxClassifier:
    """The predictor for the export's kind of item (model.json's `modality`; exports before it: images).
    `options`: how to read tables of texts (a text export only; ExportError for another)."""
    manifest = read_manifest(export_dir)
    kind = manifest.get("modality", "image")
    if kind == "text":
        return TextPredictor(export_dir, model=model, manifest=manifest, options=options)
    if options:
        raise ExportError(f"{export_dir} classifies {_plural(kind)}; {', '.join(options)} is for an "
                          "export of texts.")
    if kind == "audio":
        return AudioPredictor(export_dir, model=model, manifest=manifest)
    return Predictor(export_dir, model=model, manifest=manifest)


def predict(export_dir: str | os.PathLike, paths: Iterable[str | os.PathLike], top_k: int = 3,
            errors: list[dict[str, str]] | None = None, model: str | None = None,
            options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """[{"path", "class", "confidence", "top_k": [[class, p], ...]}] for every readable item, in input order.

    Raises `ExportError` for a missing, incomplete or incompatible export. Files (and rows of a table)
    that cannot be read or decoded are skipped and, when `errors` is a list, appended to it as
    {"path", "reason"}. `model` picks the ONNX classifier (see `Predictor`); `options` read tables of
    texts (see `TextPredictor`).
    """
    return open_predictor(export_dir, model=model, options=options).predict(paths, top_k=top_k, errors=errors)
