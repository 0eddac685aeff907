"""`export_workspace`: write a self-contained export folder of a workspace's model and labels.

Everything is written to a hidden temporary folder beside the target and renamed into place at
the end, with `model.json` (the manifest, listing every file with its size and SHA-256) written
last: a full disk or a crash leaves no folder that looks like a complete export. Each exported
model is run once against the torch model it came from, and the export fails if they disagree.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import warnings
import zipfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sslapp import __version__
from sslapp.export import labels as labels_mod
from sslapp.export.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    FORMATS,
    MANIFEST,
    MODEL_FILES,
    ONNX_INPUT,
    ONNX_OUTPUT,
    ExportError,
)
from sslapp.finetune.model import Classifier, load_classifier, save_classifier
from sslapp.ssl.encoder import Encoder, load_encoder, save_encoder
from sslapp.workspace import Workspace

ONNX_OPSET = 18
MAX_ABS_DIFF = 1e-4
SNIPPET = Path(__file__).with_name("onnx_snippet.py")


class NoClassifierError(ExportError):
    """The workspace has no fine-tuned classifier; the encoder alone can still be exported."""


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    items = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    bad = [f for f in items if f not in FORMATS]
    if bad or not items:
        raise ExportError(f"unknown format(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(FORMATS)}.")
    return tuple(dict.fromkeys(items))


# -- writers -----------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet():
    """Silence the exporters' deprecation and tracer chatter; failures still raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path, output_name: str) -> None:
    """Single-file ONNX with a dynamic batch dimension (legacy exporter; torch.export-based as fallback)."""
    import onnx

    kwargs = dict(input_names=[ONNX_INPUT], output_names=[output_name], opset_version=ONNX_OPSET)
    with _quiet():
        try:
            torch.onnx.export(module, (example,), str(path), dynamo=False, do_constant_folding=True,
                              dynamic_axes={ONNX_INPUT: {0: "batch"}, output_name: {0: "batch"}}, **kwargs)
        except OSError:  # a full disk is not the exporter's fault: no retry
            raise
        except Exception:  # the legacy exporter is gone or failed: use torch.export
            for leftover in path.parent.glob(path.name + "*"):
                leftover.unlink()
            batch = torch.export.Dim("batch", min=1)
            program = torch.onnx.export(module, (example,), dynamo=True, external_data=False, verbose=False,
                                        dynamic_shapes=({0: batch},), **kwargs)
            program.save(str(path), external_data=False)
    from onnx.external_data_helper import uses_external_data

    bare = onnx.load(str(path), load_external_data=False)
    external = {e.value for t in bare.graph.initializer if uses_external_data(t)
                for e in t.external_data if e.key == "location"}
    model = onnx.load(str(path))  # pulls in the external data, if any
    onnx.checker.check_model(model)
    if external:  # inline it: the export promises one self-contained file
        onnx.save_model(model, str(path), save_as_external_data=False)
        for location in external:
            (path.parent / location).unlink(missing_ok=True)


def export_torchscript(module: nn.Module, example: torch.Tensor, path: Path, extra: dict[str, str]) -> None:
    with _quiet():
        traced = torch.jit.trace(module, (example,), check_trace=False)
        buffer = io.BytesIO()  # torch.jit.save to a path aborts the process on a full disk; Python raises
        torch.jit.save(traced, buffer, _extra_files={k: v.encode() for k, v in extra.items()})
    with open(path, "wb") as f:
        f.write(buffer.getbuffer())


def _max_diff_onnx(path: Path, x: torch.Tensor, expected: np.ndarray) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float(np.abs(session.run(None, {ONNX_INPUT: x.numpy()})[0] - expected).max())


def _max_diff_torchscript(path: Path, x: torch.Tensor, expected: np.ndarray) -> float:
    with _quiet():
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return float(np.abs(loaded(x).numpy() - expected).max())


@contextlib.contextmanager
def _io_errors_as_oserror():
    """safetensors reports a full disk as SafetensorError('... I/O error: ... (os error 28)'): make it OSError."""
    try:
        yield
    except OSError:
        raise
    except Exception as exc:
        found = re.search(r"I/O error: (.*) \(os error (\d+)\)", str(exc))
        if found is None:
            raise
        raise OSError(int(found.group(2)), found.group(1)) from exc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- inputs ------------------------------------------------------------------------------
def _example_batch(ws: Workspace, size: int, n: int = 3) -> torch.Tensor:
    """Real cached images when the workspace has them (what the model sees in the app), else noise."""
    try:
        from sslapp.ingest.cache import read_cache

        cache = read_cache(ws)
        if len(cache) and cache.shape[1] == size:
            rows = np.asarray(cache[np.linspace(0, len(cache) - 1, n).astype(int)])
            return torch.from_numpy(rows).permute(0, 3, 1, 2).float() / 255.0
    except Exception:  # a damaged cache must not block an export; noise checks the model just as well
        pass
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def _load_models(ws: Workspace, encoder_only: bool) -> tuple[Classifier | None, Encoder, dict[str, Any] | None,
                                                             dict[str, Any] | None]:
    store = ws.store
    clf_art, enc_art = store.latest_artifact("classifier"), store.latest_artifact("encoder")
    clf_path = ws.root / clf_art["path"] if clf_art else None
    if clf_art and not clf_path.is_file():
        raise ExportError(f"the classifier file {clf_path} is missing; fine-tune again, then export.")
    if not encoder_only:
        if clf_art is None:
            hint = ("export the pretrained encoder alone with --encoder-only (or the app's 'Export the encoder "
                    "only' button), or " if enc_art else "pretrain an encoder, then ")
            raise NoClassifierError(f"{ws.root} has no fine-tuned classifier yet; {hint}label some images and "
                                    "train a classifier (Train page or `sslapp finetune`) to export it.")
        model = load_classifier(clf_path)
        return model, model.encoder, clf_art, enc_art
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


# -- the export --------------------------------------------------------------------------
def export_workspace(ws: Workspace, out_dir: str | os.PathLike, formats: str | Sequence[str] = FORMATS,
                     imagefolder: bool = False, overwrite: bool = False, encoder_only: bool = False,
                     propagate_threshold: float | None = labels_mod.DEFAULT_PROPAGATE_THRESHOLD,
                     progress: Callable[[str], None] | None = None,
                     check_stop: Callable[[], None] | None = None) -> dict[str, Any]:
    """Write the export folder `out_dir`; returns its manifest (the content of model.json).

    Raises `NoClassifierError` when there is no classifier (retry with `encoder_only=True`) and
    `ExportError` for an existing `out_dir` without `overwrite` or other unusable input.
    """
    formats = parse_formats(formats)
    out_dir = Path(out_dir).expanduser().absolute()
    _check_target(out_dir, overwrite)
    say = progress or (lambda message: None)
    stop = check_stop or (lambda: None)
    model, encoder, clf_art, enc_art = _load_models(ws, encoder_only)
    kind = "encoder" if model is None else "classifier"
    cfg = encoder.config
    size = int(cfg.input_size)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        files: dict[str, dict[str, Any]] = {}
        checks: dict[str, float] = {}
        x = _example_batch(ws, size)
        parts: list[tuple[str, nn.Module]] = ([("classifier", model)] if model is not None else []) + \
            [("encoder", encoder)]
        classes = list(model.classes) if model is not None else []
        extra = {"sslapp.json": json.dumps({"kind": kind, "classes": classes, "input_size": size,
                                            "sslapp_version": __version__})}
        for part, module in parts:
            module = module.eval().cpu()
            with torch.inference_mode():
                expected = module(x).numpy()
            for fmt in formats:
                stop()
                name = MODEL_FILES[(part, fmt)]
                path = tmp / name
                say(f"writing {name}")
                if fmt == "onnx":
                    export_onnx(module, x[:2], path, ONNX_OUTPUT[part])
                    checks[name] = _max_diff_onnx(path, x, expected)
                elif fmt == "torchscript":
                    export_torchscript(module, x[:2], path, extra)
                    checks[name] = _max_diff_torchscript(path, x, expected)
                else:
                    with _io_errors_as_oserror():
                        save = save_classifier if part == "classifier" else save_encoder
                        save(module, path, {"sslapp_version": __version__})
                if checks.get(name, 0.0) > MAX_ABS_DIFF:
                    raise ExportError(f"{name} disagrees with the torch model by {checks[name]:.2e} (limit "
                                      f"{MAX_ABS_DIFF:g}); this backbone does not export faithfully. Please report it.")
                files[name] = {"part": part, "format": fmt}

        stop()
        say("writing labels")
        threshold = propagate_threshold
        if clf_art and threshold is not None:
            threshold = float((clf_art.get("meta") or {}).get("propagate_threshold", threshold))
        rows = labels_mod.label_rows(ws, clf_art.get("run_id") if clf_art else None, threshold)
        for name, what in labels_mod.write_labels(rows, tmp).items():
            files[name] = {"part": "labels", "format": name.rsplit(".", 1)[1], "description": what}
        tree = None
        if imagefolder:
            say("copying labelled originals (ImageFolder)")
            tree = labels_mod.write_imagefolder(ws, rows, tmp / "imagefolder")
        if model is not None and "onnx" in formats:
            shutil.copyfile(SNIPPET, tmp / "predict_onnx.py")
            files["predict_onnx.py"] = {"part": "snippet", "format": "python"}

        manifest = _manifest(ws, kind, cfg, classes, formats, clf_art, enc_art, model, encoder, rows, tree,
                             threshold, checks)
        (tmp / "README.md").write_text(model_card(manifest, (tmp / "predict_onnx.py").read_text(encoding="utf-8")
                                                  if "predict_onnx.py" in files else None), encoding="utf-8")
        files["README.md"] = {"part": "model card", "format": "markdown"}
        for name, info in files.items():
            path = tmp / name
            info["bytes"] = path.stat().st_size
            info["sha256"] = _sha256(path)
            _fsync_file(path)
        manifest["files"] = files
        stop()
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        _fsync_file(tmp / MANIFEST)
        _swap_in(tmp, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"export written to {out_dir}")
    return {**manifest, "path": str(out_dir)}


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
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _manifest(ws: Workspace, kind: str, cfg, classes: list[str], formats: tuple[str, ...],
              clf_art: dict | None, enc_art: dict | None, model: Classifier | None, encoder: Encoder, rows: list[dict[str, Any]],
              tree: dict | None, threshold: float | None, checks: dict[str, float]) -> dict[str, Any]:
    clf_meta = (clf_art or {}).get("meta") or {}
    enc_meta = (enc_art or {}).get("meta") or {}
    cv = clf_meta.get("cv") or {}
    size, train = int(cfg.input_size), int(cfg.train_size)
    by_source: dict[str, int] = {}
    for r in rows:
        by_source[r["source"]] = by_source.get(r["source"], 0) + 1
    steps = [
        "Decode the file with Pillow (PNG, JPEG, WebP, BMP, TIFF or GIF) and take its first frame.",
        f"A JPEG whose shorter side is at least {2 * size} px is decoded in Pillow's draft mode "
        f"(img.draft('RGB', ({size}, {size}))), as sslapp does.",
        "Apply the EXIF orientation (PIL.ImageOps.exif_transpose).",
        "Convert to 8-bit RGB; transparent pixels are composited over white; 16-bit images are scaled by 1/257.",
        "Crop the centred square whose side is min(width, height).",
        f"Resize to {size} x {size} px with bicubic resampling (PIL.Image.Resampling.BICUBIC) -> uint8 array.",
        f"Divide by 255 to float32 in [0, 1]; layout NCHW (batch, 3, {size}, {size}), channels RGB.",
        (f"Inside the model: bilinear resize to {train} x {train} px (align_corners=False), then " if train != size
         else "Inside the model: ") + f"normalise with mean {list(cfg.mean)} and std {list(cfg.std)}.",
    ]
    l2 = bool(getattr(model, "normalize", False))
    if kind == "classifier":
        steps.append("Inside the model: the encoder's features are " + ("L2-normalised, then " if l2 else "")
                     + "fed to a linear head; softmax gives the probabilities.")
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sslapp_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "kind": kind,
        "classes": classes,
        "formats": list(formats),
        "input": {"name": ONNX_INPUT, "shape": ["batch", 3, size, size], "dtype": "float32", "range": [0.0, 1.0],
                  "layout": "NCHW", "channels": "RGB", "size": size},
        "output": {"name": ONNX_OUTPUT[kind],
                   "shape": ["batch", len(classes) if kind == "classifier" else int(encoder.dim)],
                   "meaning": "class probabilities (softmax applied inside the model), in the order of 'classes'"
                   if kind == "classifier" else "feature vector (the encoder's embedding)"},
        "preprocessing": {"steps": steps, "size": size, "first_frame": True, "exif_transpose": True,
                          "jpeg_draft_min_side": 2 * size, "alpha": "composite over white", "crop": "centre square",
                          "resample": "bicubic", "dtype": "uint8", "scale": 1 / 255},
        "normalisation": {"inside_model": True, "resize_to": train, "resize_mode": "bilinear",
                          "mean": list(cfg.mean), "std": list(cfg.std)},
        "head": ({"type": "linear", "feature_normalisation": "l2" if l2 else "none", "softmax": True}
                 if kind == "classifier" else None),
        "backbone": cfg.backbone,
        "feature_dim": int(encoder.dim),
        "ssl_method": cfg.method,
        "training_data": {
            "items_in_workspace": ws.store.count_items(),
            "labels_per_class": clf_meta.get("label_counts") or {},
            "n_labels": cv.get("n_labels", sum((clf_meta.get("label_counts") or {}).values()) or None),
            "fine_tuning": clf_meta.get("mode"),
            "propagation": clf_meta.get("propagation"),
            "pretraining": {k: v for k, v in enc_meta.items() if isinstance(v, str | int | float | bool)},
        },
        "estimated_accuracy": ({"mean": cv.get("mean"), "std": cv.get("std"), "low": cv.get("low"),
                                "high": cv.get("high"), "n_labels": cv.get("n_labels"),
                                "scheme": cv.get("scheme"), "text": cv.get("text"),
                                "how": "cross-validation on the labelled images (mean and spread over folds)"}
                               if cv.get("mean") is not None else None),
        "labels": {"rows": len(rows), "by_source": by_source, "propagate_threshold": threshold},
        "imagefolder": tree,
        "verified_max_abs_diff": checks,
    }


def model_card(manifest: dict[str, Any], snippet: str | None) -> str:
    """README.md for the export folder: what the model is, how good, how to use it."""
    m = manifest
    acc = m.get("estimated_accuracy")
    td = m["training_data"]
    lines = [f"# sslapp {'classifier' if m['kind'] == 'classifier' else 'encoder'} export", "",
             f"Exported {m['created_at']} by sslapp {m['sslapp_version']} (export format v{m['format_version']}).", ""]
    if m["kind"] == "classifier":
        lines += ["## Model", "",
                  f"An image classifier for {len(m['classes'])} classes: {', '.join(m['classes'])}.",
                  f"Backbone `{m['backbone']}` pretrained with self-supervised `{m['ssl_method']}` on the "
                  f"workspace's {td['items_in_workspace']} images, then trained ({td.get('fine_tuning') or 'head'}) "
                  f"on {td.get('n_labels') or '?'} labels.", ""]
        if acc and acc.get("mean") is not None:
            detail = acc.get("text") or f"{acc['how']}, {acc.get('n_labels')} labels"
            lines += [f"**Estimated accuracy: {100 * acc['mean']:.1f}% ± {100 * (acc.get('std') or 0):.1f}%** "
                      f"({detail}). Few labels make this estimate rough; check it on images of your own "
                      "before relying on it.", ""]
        else:
            lines += ["No accuracy estimate is available for this model (too few labels to cross-validate).", ""]
        lines += ["| class | labels |", "|---|---|"]
        lines += [f"| {c} | {td['labels_per_class'].get(c, '?')} |" for c in m["classes"]]
        lines.append("")
    else:
        lines += ["## Model", "",
                  f"The encoder alone: backbone `{m['backbone']}` pretrained with self-supervised "
                  f"`{m['ssl_method']}`. It maps an image to a {m['feature_dim']}-dimensional feature vector "
                  "(for search, clustering or your own classifier). No classifier was exported.", ""]
    lines += ["## Files", "", "| file | what |", "|---|---|"]
    what = {"onnx": "ONNX (dynamic batch, single file; onnxruntime)", "torchscript": "TorchScript (torch.jit.load)",
            "safetensors": "weights (safetensors) for sslapp's model classes"}
    for fmt in m["formats"]:
        for part in (("classifier", "encoder") if m["kind"] == "classifier" else ("encoder",)):
            lines.append(f"| `{MODEL_FILES[(part, fmt)]}` | {part}: {what[fmt]} |")
    lines += ["| `model.json` | classes, input, preprocessing, training data, accuracy, file checksums |",
              "| `labels.csv`, `labels.json` | labels: item path, class, source (user, imported, propagated), "
              "confidence of propagated ones |"]
    if m["kind"] == "classifier" and "onnx" in m["formats"]:
        lines.append("| `predict_onnx.py` | the snippet below |")
    if m.get("imagefolder"):
        lines.append("| `imagefolder/<class>/` | originals of the images a person labelled |")
    lines += ["", "## Input and preprocessing", "",
              f"Input `{m['input']['name']}`: float32 {m['input']['shape']} in [0, 1], RGB. Output "
              f"`{m['output']['name']}`: {m['output']['meaning']}.", ""]
    lines += [f"{i}. {s}" for i, s in enumerate(m["preprocessing"]["steps"], 1)]
    lines += ["", "## Use it", ""]
    if m["kind"] == "classifier":
        lines += ["With sslapp installed (same preprocessing as the app, no torch needed):", "", "```bash",
                  "sslapp predict . photo.jpg more_photos/ --json", "```", ""]
    if snippet:
        lines += ["With onnxruntime, Pillow and numpy only (`predict_onnx.py`):", "", "```python",
                  snippet.rstrip(), "```", ""]
    part = m["kind"]
    if "torchscript" in m["formats"]:
        lines += ["In PyTorch, without sslapp (the same float32 input as above):", "", "```python", "import torch",
                  f"model = torch.jit.load('{MODEL_FILES[(part, 'torchscript')]}')",
                  f"out = model(torch.rand(1, 3, {m['input']['size']}, {m['input']['size']}))", "```", ""]
    if "safetensors" in m["formats"]:
        lines += ["With sslapp, from the safetensors weights (nothing pickled):", "", "```python",
                  ("from sslapp.finetune.model import load_classifier\n"
                   "model = load_classifier('classifier.safetensors')" if part == "classifier" else
                   "from sslapp.ssl.encoder import load_encoder\nmodel = load_encoder('encoder.safetensors')"),
                  "```", ""]
    by_source = ", ".join(f"{k}: {v}" for k, v in m["labels"]["by_source"].items()) or "none"
    lines += ["## Labels", "",
              f"{m['labels']['rows']} rows ({by_source}). `path` is the image's name when it was added; "
              "`original` is its copy inside the workspace. `propagated` rows are the model's own confident "
              f"guesses (confidence >= {m['labels']['propagate_threshold']}), not a person's labels.", "",
              "## Limits", "",
              f"The model saw images at {m['input']['size']} px and only the classes above: every input gets one of "
              "them, however unlike the training images it is. Its accuracy estimate comes from few labels.", ""]
    return "\n".join(lines)


def zip_export(export_dir: str | os.PathLike, zip_path: str | os.PathLike | None = None) -> Path:
    """Zip an export folder (temp file, then rename); returns the zip's path."""
    root = Path(export_dir)
    target = Path(zip_path) if zip_path else root.with_name(root.name + ".zip")
    tmp = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for path in sorted(root.rglob("*")):
                if path.is_file():  # weights and images barely compress: store them, deflate the text
                    packed = path.suffix in (".json", ".csv", ".md", ".py")
                    zf.write(path, f"{root.name}/{path.relative_to(root).as_posix()}",
                             compress_type=zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
