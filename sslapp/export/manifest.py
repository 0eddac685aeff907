"""What an export folder holds and how to check one before use. No torch: `sslapp predict` uses it.

`model.json` is written last, so a folder without it (or with files missing or of the wrong
size) is an incomplete export, never mistaken for a complete one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FORMAT_NAME = "sslapp-export"
FORMAT_VERSION = 1
MANIFEST = "model.json"
FORMATS = ("onnx", "torchscript", "safetensors")
# what a user runs: the ONNX classifier (encoder and head in one graph) and safetensors for PyTorch;
# TorchScript and the encoder's own files are one option away (--formats, --encoder-files, --all)
DEFAULT_FORMATS = ("onnx", "safetensors")
QUANTIZE = ("fp16", "int8")  # optional smaller copies of the ONNX classifier
QUANTIZED_FILES = {"fp16": "classifier.fp16.onnx", "int8": "classifier.int8.onnx"}
ONNX_CLASSIFIERS = {"fp32": "classifier.onnx", **QUANTIZED_FILES}  # `sslapp predict --model` choices
GOOD_QUANTIZED_AGREEMENT = 0.99  # a quantized model keeping the top class less often than this is called poor
ONNX_INPUT = "image"
ONNX_OUTPUT = {"classifier": "probabilities", "encoder": "features"}
# (part, format) -> file name inside the export folder
MODEL_FILES = {
    ("classifier", "onnx"): "classifier.onnx",
    ("classifier", "torchscript"): "classifier.torchscript.pt",
    ("classifier", "safetensors"): "classifier.safetensors",
    ("encoder", "onnx"): "encoder.onnx",
    ("encoder", "torchscript"): "encoder.torchscript.pt",
    ("encoder", "safetensors"): "encoder.safetensors",
}


class ExportError(ValueError):
    """An export folder that cannot be used (missing, incomplete, another version), with what to do."""


def read_manifest(export_dir: str | Path) -> dict[str, Any]:
    """Load and check `model.json` and the files it lists; raise ExportError saying what is wrong."""
    root = Path(export_dir)
    if not root.is_dir():
        raise ExportError(f"{root} is not a folder; pass the folder `sslapp export` wrote.")
    path = root / MANIFEST
    if not path.is_file():
        raise ExportError(f"{root} has no {MANIFEST}: it is not an sslapp export, or the export did not finish "
                          "(model.json is written last). Export again with `sslapp export WORKSPACE OUT_DIR`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path} cannot be read ({exc}); export again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ExportError(f"{path} is not an sslapp export manifest (format is {manifest.get('format')!r}"
                          f" where {FORMAT_NAME!r} was expected).")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        written = manifest.get("sslapp_version", "an unknown version")
        raise ExportError(f"{root} is export format v{version} (written by sslapp {written}); this sslapp reads "
                          f"v{FORMAT_VERSION}. Export again with this sslapp, or use the sslapp that wrote it.")
    missing, wrong = [], []
    for name, info in (manifest.get("files") or {}).items():
        file = root / name
        if not file.is_file():
            missing.append(name)
        elif "bytes" in info and file.stat().st_size != info["bytes"]:
            wrong.append(f"{name} ({file.stat().st_size:,} bytes, expected {info['bytes']:,})")
    if missing or wrong:
        parts = ([f"missing: {', '.join(sorted(missing))}"] if missing else []) + \
                ([f"wrong size: {', '.join(wrong)}"] if wrong else [])
        raise ExportError(f"{root} is incomplete or damaged ({'; '.join(parts)}); copy the whole folder "
                          "again or export again.")
    return manifest


def require_onnx_classifier(manifest: dict[str, Any], export_dir: str | Path, model: str | None = None) -> Path:
    """Path of the ONNX classifier to run: `model` (fp32, int8, fp16 or a file name) when given, else
    the export's `predict_model` (the fp32 one, or the quantized one when it was exported alone).
    ExportError when the export has no such model."""
    if manifest.get("kind") != "classifier":
        raise ExportError(f"{export_dir} holds only the encoder (a feature extractor), no classifier; "
                          "fine-tune a classifier in the workspace and export again to predict classes.")
    files = manifest.get("files") or {}
    present = [n for n in ONNX_CLASSIFIERS.values() if n in files]
    if model is not None:
        name = ONNX_CLASSIFIERS.get(model, model)
        if name not in present:
            have = ", ".join(f"{k} ({v})" for k, v in ONNX_CLASSIFIERS.items() if v in present) or "none"
            raise ExportError(f"{export_dir} has no ONNX classifier {model!r}; it has: {have}. Export again "
                              "with --quantize int8 or fp16 for a quantized one.")
        return Path(export_dir) / name
    if not present:
        raise ExportError(f"{export_dir} was exported without ONNX (formats {manifest.get('formats')}); "
                          "`sslapp predict` needs it: export again with --formats onnx,... (or --quantize).")
    name = manifest.get("predict_model")
    return Path(export_dir) / (name if name in present else present[0])


def verify_checksum(export_dir: str | Path, manifest: dict[str, Any], name: str) -> None:
    """Raise ExportError when `name` does not match the SHA-256 in the manifest (a damaged copy)."""
    expected = ((manifest.get("files") or {}).get(name) or {}).get("sha256")
    if not expected:
        return
    h = hashlib.sha256()
    with open(Path(export_dir) / name, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != expected:
        raise ExportError(f"{Path(export_dir) / name} is damaged (its checksum differs from model.json); "
                          "copy the export again or export again.")


def folder_listing(out_dir: Path) -> dict[str, Any]:
    """What the export folder holds, as a file manager shows it: its files (model.json included), each
    subfolder with its file count, and the bytes of everything, so the page's count matches the folder."""
    files = sorted(p.name for p in out_dir.iterdir() if p.is_file())
    folders = {p.name: sum(1 for f in p.rglob("*") if f.is_file()) for p in sorted(out_dir.iterdir()) if p.is_dir()}
    return {"files": files, "folders": folders, "bytes": sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file())}
