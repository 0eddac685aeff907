"""`export_workspace`: write a self-contained export folder of a workspace's model and labels.

By default it writes what a user runs: the ONNX classifier (encoder and head in one graph) and its
safetensors weights for PyTorch users (`DEFAULT_FORMATS`). TorchScript (`formats`), the encoder's
own files (`encoder_files`) and a quantized ONNX (`quantize`: fp16 or int8, `sslapp.export.quantize`)
are one option away; every format and part together is `sslapp export --all`.

Everything is written to a hidden temporary folder beside the target and renamed into place at
the end, with `model.json` (the manifest, listing every file with its size and SHA-256) written
last: a full disk or a crash leaves no folder that looks like a complete export. Every exported
model file (ONNX, TorchScript and safetensors alike) is loaded back and run against the torch
model it came from, and the export fails if they disagree (`sslapp.export.verify`).

A text classifier (a head on MiniLM or TF-IDF vectors) exports the same way through `text_export`:
one graph from token ids or term counts to probabilities, checked against the app's own output.

The parts: `writers` (model files), `verify` (the check), `quantize` (the smaller ONNX copies),
`text_export` (text models), `labels` and `imagefolder` (label files), `model_json` (the manifest),
`model_card` (README.md) and `snippets` (predict_onnx.py). A sound classifier is an image model on
log-mel pictures: it exports as one, checked on the workspace's cached sounds.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sslapp import __version__
from sslapp.atomic import atomic_path, fsync_path
from sslapp.export import labels as labels_mod
from sslapp.export import verify
from sslapp.export.imagefolder import write_imagefolder
from sslapp.export.manifest import (
    DEFAULT_FORMATS,
    FORMATS,
    MANIFEST,
    MODEL_FILES,
    ONNX_OUTPUT,
    QUANTIZE,
    QUANTIZED_FILES,
    ExportError,
)
from sslapp.export.model_card import model_card
from sslapp.export.model_json import assemble, image_model
from sslapp.export.quantize import POOL, write_quantized
from sslapp.export.snippets import snippet as snippet_for
from sslapp.export.text_export import write_text_models
from sslapp.export.writers import write_onnx, write_safetensors, write_torchscript
from sslapp.finetune.model import Classifier, FeaturesOnly, load_classifier
from sslapp.modalities import workspace_modality
from sslapp.models.encoder import Encoder, load_encoder
from sslapp.models.text.base import TextEncoder
from sslapp.workspace import Workspace


class NoClassifierError(ExportError):
    """The workspace has no fine-tuned classifier; the encoder alone can still be exported."""


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    items = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    bad = [f for f in items if f not in FORMATS]
    if bad or not items:
        raise ExportError(f"unknown format(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(FORMATS)}.")
    return tuple(dict.fromkeys(items))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_models(ws: Workspace, encoder_only: bool) -> tuple[Classifier | None, Encoder | TextEncoder,
                                                             dict[str, Any] | None, dict[str, Any] | None]:
    """(classifier, its encoder, their artifacts); a classifier that is a head on a text encoder's vectors
    comes with that encoder, loaded from the artifact it was trained on."""
    from sslapp.features.imported import export_problem
    from sslapp.features.read import is_imported

    store = ws.store
    problem = None if encoder_only else export_problem(ws)
    if problem:  # a classifier on imported vectors: nothing computes them from an image
        raise ExportError(problem)
    clf_art = store.latest_artifact("classifier")
    encoders = [a for a in store.artifacts("encoder", limit=100_000) if not is_imported(a)]
    enc_art = encoders[0] if encoders else None  # the newest: what --encoder-only exports
    if clf_art is not None and not encoder_only:  # model.json names the encoder the classifier was trained on
        used = (clf_art.get("meta") or {}).get("encoder_artifact_id")
        if used is not None:  # (classifiers from before it was recorded keep the newest)
            enc_art = next((a for a in encoders if a["id"] == used), None)
    clf_path = ws.root / clf_art["path"] if clf_art else None
    if clf_art and not clf_path.is_file():
        raise ExportError(f"the classifier file {clf_path} is missing; fine-tune again, then export.")
    if not encoder_only:
        if clf_art is None:
            modality = workspace_modality(ws)
            hint = ("" if "encoder" not in modality.export_extras else
                    "export the pretrained encoder alone with --encoder-only (or the app's 'Export the encoder "
                    "only' button), or " if enc_art else "pretrain an encoder, then ")
            raise NoClassifierError(f"{ws.root} has no fine-tuned classifier yet; {hint}label some "
                                    f"{modality.plural} and train a classifier (Train page or `sslapp finetune`) "
                                    "to export it.")
        model = load_classifier(clf_path)
        if not isinstance(model.encoder, FeaturesOnly):
            return model, model.encoder, clf_art, enc_art
        if enc_art is None or not (ws.root / enc_art["path"]).is_file():  # a head on vectors: its encoder's file
            raise ExportError(f"the {model.config.backbone} encoder this classifier was trained on is gone; "
                              f"train the classifier again (`sslapp finetune {ws.root}`), then export.")
        encoder = load_encoder(ws.root / enc_art["path"])
        if isinstance(encoder, Encoder):  # a picture encoder (sounds' log-mel pictures): head and encoder, one model
            model.encoder = encoder
        return model, encoder, clf_art, enc_art
    if enc_art is not None:
        enc_path = ws.root / enc_art["path"]
        if not enc_path.is_file():
            raise ExportError(f"the encoder file {enc_path} is missing; pretrain again, then export.")
        return None, load_encoder(enc_path), None, enc_art
    if clf_art is not None:
        return None, load_classifier(clf_path).encoder, clf_art, None
    raise ExportError(f"{ws.root} has no encoder or classifier to export; pretrain first "
                      "(Pretrain page or `sslapp pretrain`).")


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() or out_dir.is_symlink():
        if not overwrite:
            raise ExportError(f"{out_dir} already exists; pass --overwrite to replace it, or pick a new folder.")
        if not out_dir.is_dir() or out_dir.is_symlink():
            raise ExportError(f"{out_dir} exists and is not a folder; pick another output path.")
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
            raise ExportError(f"{out_dir} is not empty and is not an sslapp export; --overwrite only replaces "
                              "an earlier export. Pick a new or empty folder.")


def _write_models(tmp: Path, parts: list[tuple[str, nn.Module]], formats: tuple[str, ...], x: torch.Tensor,
                  extra: dict[str, str], files: dict[str, dict[str, Any]], say: Callable[[str], None],
                  stop: Callable[[], None]) -> dict[str, float]:
    """Write and check every (part, format) model file in `tmp`, listing it in `files`; returns
    {file name: max abs difference from the torch model}."""
    diffs: dict[str, float] = {}
    for part, module in parts:
        module = module.eval().cpu()
        expected = verify.reference_output(module, x)
        for fmt in formats:
            stop()
            name = MODEL_FILES[(part, fmt)]
            path = tmp / name
            say(f"writing {name}")
            if fmt == "onnx":
                write_onnx(module, x[:2], path, ONNX_OUTPUT[part])  # batch 2 here, 3 in the check: dynamic
            elif fmt == "torchscript":
                write_torchscript(module, x[:2], path, extra)
            else:
                write_safetensors(module, path)
            diffs[name] = verify.max_abs_diff(fmt, part, path, x, expected)
            verify.require_faithful(name, diffs[name])
            files[name] = {"part": part, "format": fmt}
    return diffs


def export_workspace(ws: Workspace, out_dir: str | os.PathLike, formats: str | Sequence[str] = DEFAULT_FORMATS,
                     imagefolder: bool = False, overwrite: bool = False, encoder_only: bool = False,
                     encoder_files: bool = False, quantize: str | None = None,
                     propagate_threshold: float | None = labels_mod.DEFAULT_PROPAGATE_THRESHOLD,
                     progress: Callable[[str], None] | None = None,
                     check_stop: Callable[[], None] | None = None) -> dict[str, Any]:
    """Write the export folder `out_dir`; returns its manifest (the content of model.json) plus `path`.

    `formats`: model formats for each part written (default: ONNX and safetensors). A classifier
    export writes the classifier (encoder and head in one model) and, with `encoder_files`, the
    encoder alone too; an encoder-only export writes the encoder. `quantize` ("fp16" or "int8")
    adds a smaller ONNX classifier, with its agreement with the full model in the manifest.
    `propagate_threshold`: unlabelled items the exported classifier predicts with at least this
    confidence go into the label files as `propagated` rows (None: none do).
    Raises `NoClassifierError` when there is no classifier (retry with `encoder_only=True`) and
    `ExportError` for an existing `out_dir` without `overwrite` or other unusable input, and for what the
    workspace's kind of item does not offer (`export_refusal`, `export_option_refusal`: texts export the
    classifier as ONNX and safetensors only), before anything is written.
    """
    formats = parse_formats(formats)
    refusal = export_refusal_for(ws, formats, imagefolder, encoder_only, encoder_files, quantize)
    if refusal:
        raise ExportError(refusal)
    if quantize is not None and quantize not in QUANTIZE:
        raise ExportError(f"unknown quantization {quantize!r}; choose from {', '.join(QUANTIZE)}.")
    out_dir = Path(out_dir).expanduser().absolute()
    _check_target(out_dir, overwrite)
    say = progress or (lambda message: None)
    stop = check_stop or (lambda: None)
    model, encoder, clf_art, enc_art = _load_models(ws, encoder_only)
    kind = "encoder" if model is None else "classifier"
    if quantize and model is None:
        raise ExportError("--quantize makes a smaller classifier; an encoder-only export has none. Export "
                          "without --quantize, or train a classifier first.")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        if isinstance(encoder, TextEncoder):  # a head on a text encoder's vectors
            written = write_text_models(ws, tmp, formats, model, encoder, say, stop)
            files, parts, quantized = written.files, ["classifier"], None
            model_fields, verification, feature_dim = written.model, written.verification, written.feature_dim
        else:  # an image model: images, or sounds' log-mel pictures (refused first when its input does not fit)
            model_fields = image_model(ws, kind=kind, cfg=encoder.config,
                                       head_l2=bool(getattr(model, "normalize", False)))
            files, parts, quantized, verification = _write_image_models(ws, tmp, model, encoder, formats,
                                                                          encoder_files, quantize, say, stop)
            feature_dim = int(encoder.dim)
        classes = list(model.classes) if model is not None else []

        stop()
        say("writing labels")
        threshold = propagate_threshold if clf_art else None  # predictions come from the classifier's run
        rows = labels_mod.label_rows(ws, clf_art.get("run_id") if clf_art else None, threshold)
        for name, what in labels_mod.write_labels(rows, tmp, [c["name"] for c in ws.store.classes()],
                                                  labels_mod.label_data_key(ws)).items():
            files[name] = {"part": "labels", "format": labels_mod.LABEL_FILES[name][0], "description": what}
        tree = None
        if imagefolder:
            say("copying labelled originals (ImageFolder)")
            tree = write_imagefolder(ws, rows, tmp / "imagefolder")
        snippet = None
        if model is not None and ("onnx" in formats or quantize):
            snippet = snippet_for(workspace_modality(ws).name)  # sounds: with the app's front end inside
            (tmp / "predict_onnx.py").write_text(snippet, encoding="utf-8")
            files["predict_onnx.py"] = {"part": "snippet", "format": "python"}

        manifest = assemble(ws, model_fields, kind=kind, classes=classes, feature_dim=feature_dim, formats=formats,
                            parts=parts, quantized=quantized, clf_art=clf_art, enc_art=enc_art, rows=rows,
                            threshold=threshold, tree=tree, verification=verification)
        (tmp / "README.md").write_text(model_card(manifest, snippet), encoding="utf-8")
        files["README.md"] = {"part": "model card", "format": "markdown"}
        for name, info in files.items():
            path = tmp / name
            info["bytes"] = path.stat().st_size
            info["sha256"] = _sha256(path)
        manifest["files"] = files
        stop()
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        for path in [*tmp.rglob("*"), tmp]:  # sslapp.atomic's rule: all of it on disk before the rename
            fsync_path(path)
        _swap_in(tmp, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"export written to {out_dir}")
    return {**manifest, "path": str(out_dir)}


def export_refusal_for(ws: Workspace, formats: tuple[str, ...], imagefolder: bool = False, encoder_only: bool = False,
                       encoder_files: bool = False, quantize: str | None = None) -> str | None:
    """Why this workspace's kind of item cannot have this export (`sslapp.modalities.export_refusal` and
    `export_option_refusal`, WS filled in), or None."""
    from sslapp.modalities import export_option_refusal, export_refusal

    modality = workspace_modality(ws)
    extras = [e for e, asked in (("encoder", encoder_only or encoder_files), ("quantize", quantize),
                                 ("imagefolder", imagefolder)) if asked]
    refusal = export_refusal(modality) or export_option_refusal(modality, formats, tuple(extras))
    return refusal.replace(" WS ", f" {ws.root} ") if refusal else None


def _write_image_models(ws: Workspace, tmp: Path, model: Classifier | None, encoder: Encoder,
                        formats: tuple[str, ...], encoder_files: bool, quantize: str | None,
                        say: Callable[[str], None], stop: Callable[[], None]
                        ) -> tuple[dict[str, dict[str, Any]], list[str], dict[str, Any] | None, dict[str, Any]]:
    """An image model's files in `tmp`, each checked on cached images: (files, parts, the quantized
    copy's entry, model.json's verification entry)."""
    size = int(encoder.config.input_size)
    inputs = verify.check_inputs(ws, size)
    if inputs.note:
        say(f"warning: checking the exported files on random noise, not the workspace's items: {inputs.note}")
    parts: list[tuple[str, nn.Module]] = [("classifier", model)] if model is not None else []
    if model is None or encoder_files:
        parts.append(("encoder", encoder))
    classes = list(model.classes) if model is not None else []
    extra = {"sslapp.json": json.dumps({"kind": "encoder" if model is None else "classifier", "classes": classes,
                                        "input_size": size, "sslapp_version": __version__})}
    files: dict[str, dict[str, Any]] = {}
    diffs = _write_models(tmp, parts, formats, inputs.x, extra, files, say, stop)
    quantized = None
    if quantize:
        stop()
        name = QUANTIZED_FILES[quantize]
        say(f"writing {name} ({quantize})")
        pool = verify.check_inputs(ws, size, POOL)  # calibration and agreement images
        fp32 = tmp / MODEL_FILES[("classifier", "onnx")] if "onnx" in formats else None
        quantized = write_quantized(model.eval().cpu(), quantize, fp32, tmp / name, pool, say)
        files[name] = {"part": "classifier", "format": "onnx", "precision": quantize}
    verification = verify.summary(inputs.source, len(inputs.x), inputs.note, diffs)
    return files, [p for p, _ in parts], quantized, verification


def _swap_in(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    """Rename the finished folder into place; an earlier export is removed only once the new one is there."""
    old = None
    if out_dir.exists() or out_dir.is_symlink():
        if not overwrite:  # appeared while we were exporting
            raise ExportError(f"{out_dir} was created while exporting; pass --overwrite or pick a new folder.")
        _check_target(out_dir, overwrite)
        old = out_dir.parent / f".{out_dir.name}.old-{secrets.token_hex(4)}"
        os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.rename(old, out_dir)
        raise
    fsync_path(out_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def zip_export(export_dir: str | os.PathLike, zip_path: str | os.PathLike | None = None) -> Path:
    """Zip an export folder atomically (`sslapp.atomic`); returns the zip's path."""
    root = Path(export_dir)
    target = Path(zip_path) if zip_path else root.with_name(root.name + ".zip")
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED,
                                                     compresslevel=6) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():  # weights and images barely compress: store them, deflate the text
                packed = path.suffix in (".json", ".csv", ".md", ".py")
                zf.write(path, f"{root.name}/{path.relative_to(root).as_posix()}",
                         compress_type=zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED)
    return target
