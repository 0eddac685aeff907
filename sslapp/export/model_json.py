"""The content of `model.json`: what the model is, what it takes, what it was trained on, how it checked out.

The preprocessing is not restated here: its fields and steps come from the workspace's modality
(`Modality.preprocessing`: file -> cache row -> model input), and the in-model steps from the
encoder's own config. No torch import: the models are passed in.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sslapp import __version__
from sslapp.export.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MODEL_FILES,
    ONNX_INPUT,
    ONNX_OUTPUT,
    QUANTIZE,
    ExportError,
)
from sslapp.modalities import Modality, workspace_modality
from sslapp.workspace import Workspace


def preprocessing(ws: Workspace, cfg: Any, size: int, head_l2: bool | None) -> dict[str, Any]:
    """The `preprocessing` entry: its fields and every step from file to output; `head_l2` None: an encoder."""
    canonical = workspace_modality(ws).preprocessing(size)
    train = int(cfg.train_size)
    inside = (f"Inside the model: bilinear resize to {train} x {train} px (align_corners=False), then "
              if train != size else "Inside the model: ") + f"normalise with mean {list(cfg.mean)} and std {list(cfg.std)}."
    steps = [*canonical.pop("steps"), inside]
    if head_l2 is not None:
        steps.append("Inside the model: the encoder's features are " + ("L2-normalised, then " if head_l2 else "")
                     + "fed to a linear head; softmax gives the probabilities.")
    return {"steps": steps, **canonical}


def left_out(kind: str, formats: tuple[str, ...], parts: list[str], quantized: dict | None,
             modality: Modality) -> dict[str, Any]:
    """The `left_out` entry: model files this export could hold but does not, and how to get them (only
    what this kind of item's export offers: `Modality.export_formats`, `export_extras`)."""
    clf = kind == "classifier"
    encoder = "encoder" in modality.export_extras
    all_parts = ("classifier", "encoder") if clf and encoder else (kind,)
    offered = modality.export_formats
    files = [MODEL_FILES[(p, f)] for p in all_parts for f in offered if p not in parts or f not in formats]
    with_encoder = clf and encoder
    how = (f"`sslapp export WORKSPACE OUT_DIR --all` writes every format{' and the encoder alone' if with_encoder else ''}; "
           f"`--formats {','.join(offered)}`{' and `--encoder-files` pick' if with_encoder else ' picks'} some")
    if clf and quantized is None and "quantize" in modality.export_extras:
        how += f"; `--quantize {'|'.join(QUANTIZE)}` adds a smaller ONNX classifier"
    return {"files": files, "how": how + ". The app's Export page offers the same choices."}


def assemble(ws: Workspace, model: dict[str, Any], *, kind: str, classes: list[str], feature_dim: int,
             formats: tuple[str, ...], parts: list[str], quantized: dict[str, Any] | None,
             clf_art: dict | None, enc_art: dict | None, rows: list[dict[str, Any]], threshold: float | None,
             tree: dict | None, verification: dict[str, Any]) -> dict[str, Any]:
    """model.json without its `files` entry (added once every file is written and hashed): what every
    export says, around `model`, the entries about the model's input and preprocessing.

    `parts`: the models written ("classifier", "encoder"); `quantized`: the quantized ONNX
    classifier's entry (`sslapp.export.quantize.write_quantized`) or None."""
    modality = workspace_modality(ws)
    clf_meta = (clf_art or {}).get("meta") or {}
    enc_meta = (enc_art or {}).get("meta") or {}
    cv = clf_meta.get("cv") or {}
    is_clf = kind == "classifier"
    counts = clf_meta.get("label_counts") or {}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sslapp_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "kind": kind,
        "modality": modality.name,
        "classes": classes,
        "formats": list(formats),
        "parts": list(parts),
        "predict_model": (MODEL_FILES[("classifier", "onnx")] if "onnx" in formats
                          else (quantized or {}).get("file")) if is_clf else None,
        "quantized": quantized,
        "left_out": left_out(kind, formats, parts, quantized, modality),
        **model,
        "output": {"name": ONNX_OUTPUT[kind], "shape": ["batch", len(classes) if is_clf else feature_dim],
                   "meaning": "class probabilities (softmax applied inside the model), in the order of 'classes'"
                   if is_clf else "feature vector (the encoder's embedding)"},
        "feature_dim": feature_dim,
        "training_data": {
            "items_in_workspace": ws.store.count_items(),
            "labels_per_class": counts,
            "n_labels": cv.get("n_labels", sum(counts.values()) or None),
            "fine_tuning": clf_meta.get("mode"),
            "propagation": clf_meta.get("propagation"),
            "pretraining": {k: v for k, v in enc_meta.items() if isinstance(v, str | int | float | bool)},
        },
        "estimated_accuracy": {"mean": cv.get("mean"), "std": cv.get("std"), "low": cv.get("low"),
                               "high": cv.get("high"), "n_labels": cv.get("n_labels"), "scheme": cv.get("scheme"),
                               "text": cv.get("text"), "measure": cv.get("measure") or "accuracy",
                               "pooled": cv.get("pooled"), "imbalance": cv.get("imbalance"),
                               "unbalanced": bool(cv.get("unbalanced")),
                               "how": f"cross-validation on the labelled {modality.plural} (95% interval)"}
        if cv.get("mean") is not None else None,
        "labels": {"rows": len(rows), "by_source": dict(Counter(r["source"] for r in rows)),
                   "propagate_threshold": threshold},
        "imagefolder": tree,
        "verification": verification,
    }


def model_input(modality: Modality, size: int) -> dict[str, Any]:
    """The `input` entry of a model that reads pictures: the modality's input spec and `size`, the side of the
    square picture the encoder takes (what `sslapp predict` feeds an image model). ExportError when the two
    disagree (a sound's log-mel picture has a fixed side, whatever the encoder was built for)."""
    spec = modality.input_spec(size)
    if list(spec["shape"][2:]) != [size, size]:
        raise ExportError(f"this encoder takes {size} x {size} px pictures, but a {modality.noun} is fed to the model as "
                          f"{' x '.join(map(str, spec['shape'][2:]))}; pick or train an encoder made in this workspace "
                          "and export again.")
    return {"name": ONNX_INPUT, **spec, "size": size}


def image_model(ws: Workspace, *, kind: str, cfg: Any, head_l2: bool) -> dict[str, Any]:
    """An image model's entries: its input tensor, the steps from file to output, the normalisation inside
    it, its head and backbone."""
    size, train = int(cfg.input_size), int(cfg.train_size)
    is_clf = kind == "classifier"
    return {
        "input": model_input(workspace_modality(ws), size),
        "preprocessing": preprocessing(ws, cfg, size, head_l2 if is_clf else None),
        "normalisation": {"inside_model": True, "resize_to": train, "resize_mode": "bilinear",
                          "mean": list(cfg.mean), "std": list(cfg.std)},
        "head": {"type": "linear", "feature_normalisation": "l2" if head_l2 else "none", "softmax": True}
        if is_clf else None,
        "backbone": cfg.backbone,
        "ssl_method": cfg.method,
    }
