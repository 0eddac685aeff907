"""The model card (README.md of an export folder), filled in from model.json.

The text lives in the templates below (`string.Template`, `$name` placeholders); the code only
picks the sections that apply and computes the values. Everything the card states comes from the
manifest, so the card cannot say more than model.json does.
"""

from __future__ import annotations

from string import Template
from typing import Any

from sslapp.export.manifest import MODEL_FILES

CARD = Template("""\
# sslapp $kind export

Exported $created_at by sslapp $sslapp_version (export format v$format_version).

## Model

$model
## Files

| file | what |
|---|---|
$files

## Input and preprocessing

Input `$input_name`: float32 $input_shape in [0, 1], RGB. Output `$output_name`: $output_meaning.

$steps

$verification

## Use it

$usage## Labels

$n_rows rows ($by_source). `path` is the image's name when it was added; `original` is its copy
inside the workspace. $propagated

## Limits

The model saw images at $size px and only the classes above: every input gets one of them,
however unlike the training images it is. Its accuracy estimate comes from few labels.
""")

CLASSIFIER = Template("""\
An image classifier for $n_classes classes: $class_list.
Backbone `$backbone` pretrained with self-supervised `$ssl_method` on the workspace's $n_items images,
then trained ($fine_tuning) on $n_labels labels.

$accuracy

| class | labels |
|---|---|
$class_rows
""")

ACCURACY = Template("""\
**Estimated accuracy: $mean% ± $std%** ($detail). Few labels make this estimate rough; check it on
images of your own before relying on it.""")

NO_ACCURACY = "No accuracy estimate is available for this model (too few labels to cross-validate)."

ENCODER = Template("""\
The encoder alone: backbone `$backbone` pretrained with self-supervised `$ssl_method`. It maps an
image to a $feature_dim-dimensional feature vector (for search, clustering or your own classifier).
No classifier was exported.
""")

VERIFIED = Template("""\
Each model file was loaded back and run on $n $inputs; its outputs differ from the app's torch
model by at most $worst (limit $limit).$note""")

NOISE_NOTE = Template(" These were random-noise inputs, not workspace images: $note.")

USE_PREDICT = """\
With sslapp installed (same preprocessing as the app, no torch needed):

```bash
sslapp predict . photo.jpg more_photos/ --json
```

"""

USE_ONNX = Template("""\
With onnxruntime, Pillow and numpy only (`predict_onnx.py`):

```python
$snippet
```

""")

USE_TORCHSCRIPT = Template("""\
In PyTorch, without sslapp (the same float32 input as above):

```python
import torch
model = torch.jit.load('$file')
out = model(torch.rand(1, 3, $size, $size))
```

""")

USE_SAFETENSORS = Template("""\
With sslapp, from the safetensors weights (nothing pickled):

```python
from sslapp.$module import $loader
model = $loader('$file')
```

""")

PROPAGATED = Template("`propagated` rows are the model's own confident guesses (confidence >= $threshold), "
                      "not a person's labels.")
NO_PROPAGATED = "No `propagated` rows (machine guesses) were added."

FORMAT_WHAT = {"onnx": "ONNX (dynamic batch, single file; onnxruntime)", "torchscript": "TorchScript (torch.jit.load)",
               "safetensors": "weights (safetensors) for sslapp's model classes"}
LOADERS = {"classifier": ("finetune.model", "load_classifier"), "encoder": ("ssl.encoder", "load_encoder")}


def _model_section(m: dict[str, Any]) -> str:
    if m["kind"] != "classifier":
        return ENCODER.substitute(backbone=m["backbone"], ssl_method=m["ssl_method"], feature_dim=m["feature_dim"])
    td, acc = m["training_data"], m.get("estimated_accuracy")
    if acc and acc.get("mean") is not None:
        accuracy = ACCURACY.substitute(mean=f"{100 * acc['mean']:.1f}", std=f"{100 * (acc.get('std') or 0):.1f}",
                                       detail=acc.get("text") or f"{acc['how']}, {acc.get('n_labels')} labels")
    else:
        accuracy = NO_ACCURACY
    rows = "\n".join(f"| {c} | {td['labels_per_class'].get(c, '?')} |" for c in m["classes"])
    return CLASSIFIER.substitute(n_classes=len(m["classes"]), class_list=", ".join(m["classes"]),
                                 backbone=m["backbone"], ssl_method=m["ssl_method"],
                                 n_items=td["items_in_workspace"], fine_tuning=td.get("fine_tuning") or "head",
                                 n_labels=td.get("n_labels") or "?", accuracy=accuracy, class_rows=rows)


def _files_section(m: dict[str, Any]) -> str:
    parts = ("classifier", "encoder") if m["kind"] == "classifier" else ("encoder",)
    rows = [f"| `{MODEL_FILES[(part, fmt)]}` | {part}: {FORMAT_WHAT[fmt]} |" for fmt in m["formats"] for part in parts]
    rows += ["| `model.json` | classes, input, preprocessing, training data, accuracy, checks, file checksums |",
             "| `labels.csv`, `labels.json` | labels: item path, class, source (user, imported, propagated), "
             "confidence of propagated ones |"]
    if m["kind"] == "classifier" and "onnx" in m["formats"]:
        rows.append("| `predict_onnx.py` | the snippet below |")
    if m.get("imagefolder"):
        rows.append("| `imagefolder/<class>/` | originals of the images a person labelled |")
    return "\n".join(rows)


def _verification_section(m: dict[str, Any]) -> str:
    v = m.get("verification") or {}
    diffs = v.get("max_abs_diff") or {}
    if not diffs:
        return "No model file was checked against the torch model."
    noise = v.get("inputs") == "random noise"
    return VERIFIED.substitute(n=v.get("n_inputs", "?"), inputs="random-noise images" if noise else "cached "
                               "workspace images", worst=f"{max(diffs.values()):.1e}", limit=v.get("limit"),
                               note=NOISE_NOTE.substitute(note=v.get("note") or "reason unknown") if noise else "")


def _usage_section(m: dict[str, Any], snippet: str | None) -> str:
    part, size = m["kind"], m["input"]["size"]
    usage = USE_PREDICT if part == "classifier" else ""
    if snippet:
        usage += USE_ONNX.substitute(snippet=snippet.rstrip())
    if "torchscript" in m["formats"]:
        usage += USE_TORCHSCRIPT.substitute(file=MODEL_FILES[(part, "torchscript")], size=size)
    if "safetensors" in m["formats"]:
        module, loader = LOADERS[part]
        usage += USE_SAFETENSORS.substitute(module=module, loader=loader, file=MODEL_FILES[(part, "safetensors")])
    return usage


def model_card(manifest: dict[str, Any], snippet: str | None) -> str:
    """README.md for the export folder: what the model is, how good, how it was checked, how to use it."""
    m = manifest
    labels = m["labels"]
    threshold = labels.get("propagate_threshold")
    return CARD.substitute(
        kind="classifier" if m["kind"] == "classifier" else "encoder", created_at=m["created_at"],
        sslapp_version=m["sslapp_version"], format_version=m["format_version"], model=_model_section(m),
        files=_files_section(m), input_name=m["input"]["name"], input_shape=m["input"]["shape"],
        output_name=m["output"]["name"], output_meaning=m["output"]["meaning"],
        steps="\n".join(f"{i}. {s}" for i, s in enumerate(m["preprocessing"]["steps"], 1)),
        verification=_verification_section(m), usage=_usage_section(m, snippet), n_rows=labels["rows"],
        by_source=", ".join(f"{k}: {v}" for k, v in labels["by_source"].items()) or "none",
        propagated=PROPAGATED.substitute(threshold=threshold) if threshold is not None else NO_PROPAGATED,
        size=m["input"]["size"])
