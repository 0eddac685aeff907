"""Classify image files with an export's ONNX model through onnxruntime. No torch on this path.

Files are read and decoded exactly as ingestion does (`sslapp.ingest.sources` and the canonical
`sslapp.modalities.image.decode`), so a file gives the same pixels here as in the app's cache, and so the
same probabilities. Unreadable or non-image files are reported and skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sslapp.export.manifest import ONNX_INPUT, read_manifest, require_onnx_classifier, verify_checksum
from sslapp.ingest.sources import iter_sources
from sslapp.modalities.image.arrays import to_nchw_float
from sslapp.modalities.image.decode import BadImage, decode_image

BATCH = 32


class Predictor:
    """An export's ONNX classifier with its classes and input size, ready to run.

    `model`: which ONNX classifier ("fp32", "int8", "fp16" or a file name in the export); None: the
    export's `predict_model` (the float32 one, or the quantized one when it was exported alone).
    """

    def __init__(self, export_dir: str | os.PathLike, threads: int | None = None, model: str | None = None):
        import onnxruntime as ort

        self.export_dir = Path(export_dir)
        self.manifest = read_manifest(self.export_dir)
        model_path = require_onnx_classifier(self.manifest, self.export_dir, model)
        self.model_file = model_path.name
        verify_checksum(self.export_dir, self.manifest, model_path.name)
        self.classes: list[str] = list(self.manifest["classes"])
        self.size = int(self.manifest["input"]["size"])
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_path), sess_options=options,
                                            providers=["CPUExecutionProvider"])

    def probabilities(self, arrays: np.ndarray) -> np.ndarray:
        """Class probabilities (B, C) for uint8 (B, S, S, 3) arrays from the canonical preprocessing."""
        if arrays.ndim != 4 or arrays.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected uint8 arrays (B, {self.size}, {self.size}, 3), got {arrays.shape}")
        return self.session.run(None, {ONNX_INPUT: to_nchw_float(arrays)})[0]

    def decoded(self, paths: Iterable[str | os.PathLike],
                errors: list[dict[str, str]] | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """(name, uint8 array) of every image under `paths`; bad files go to `errors` and are skipped."""
        for item in iter_sources(paths):
            if item.error is not None or item.data is None:
                _report(errors, item.name, item.error or "unreadable")
                continue
            try:
                yield item.name, decode_image(item.data, self.size)
            except BadImage as exc:
                _report(errors, item.name, f"{exc.kind}: {exc}")
            except MemoryError:
                _report(errors, item.name, "too-large: not enough memory to decode this image")
            except Exception as exc:  # a decoder bug on odd input is still that file's problem only
                _report(errors, item.name, f"corrupt: the decoder failed ({exc.__class__.__name__}: {exc})")

    def predict(self, paths: Iterable[str | os.PathLike], top_k: int = 3,
                errors: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        k = max(1, min(int(top_k), len(self.classes)))
        names: list[str] = []
        arrays: list[np.ndarray] = []

        def flush() -> None:
            probs = self.probabilities(np.stack(arrays))
            for name, p in zip(names, probs, strict=True):
                order = np.argsort(-p, kind="stable")[:k]
                results.append({"path": name, "class": self.classes[int(order[0])],
                                "confidence": float(p[order[0]]),
                                "top_k": [[self.classes[int(i)], float(p[i])] for i in order]})
            names.clear()
            arrays.clear()

        for name, array in self.decoded(paths, errors):
            names.append(name)
            arrays.append(array)
            if len(arrays) >= BATCH:
                flush()
        if arrays:
            flush()
        return results


def _report(errors: list[dict[str, str]] | None, name: str, reason: str) -> None:
    if errors is not None:
        errors.append({"path": name, "reason": reason})


def predict(export_dir: str | os.PathLike, paths: Iterable[str | os.PathLike], top_k: int = 3,
            errors: list[dict[str, str]] | None = None, model: str | None = None) -> list[dict[str, Any]]:
    """[{"path", "class", "confidence", "top_k": [[class, p], ...]}] for every readable image.

    Raises `ExportError` for a missing, incomplete or incompatible export. Files that cannot be
    read or decoded are skipped and, when `errors` is a list, appended to it as {"path", "reason"}.
    `model` picks the ONNX classifier (see `Predictor`).
    """
    return Predictor(export_dir, model=model).predict(paths, top_k=top_k, errors=errors)
