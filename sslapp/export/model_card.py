"""The model card (README.md of an export folder), filled in from model.json.

The text lives in the templates below and, for the "Use it" section, in `card_usage`
(`string.Template`, `$name` placeholders); the code only picks the sections that apply and computes
the values. Everything the card states comes from the manifest, so the card cannot say more than
model.json does.
"""

from __future__ import annotations

from string import Template
from typing import Any

from sslapp.export.card_usage import usage_section
from sslapp.export.manifest import GOOD_QUANTIZED_AGREEMENT, MODEL_FILES
from sslapp.modalities import Modality, get_modality

CARD = Template("""\
# sslapp $kind export

Exported $created_at by sslapp $sslapp_version (export format v$format_version).

## Model

$model
## Files

| file | what |
|---|---|
$files

$left_out

## Input and preprocessing

$input_line Output `$output_name`: $output_meaning.

$steps

$verification
$quantized
## Use it

$usage## Labels

$n_rows rows ($by_source). `path` is the $noun's name when it was added$row_note; `original` is
its copy inside the workspace. $propagated

## Limits

$limits Its accuracy estimate comes from few labels.
""")

IMAGE_INPUT = Template("Input `$name`: float32 $shape in [0, 1], RGB.")
SOUND_INPUT = Template("Input `$name`: float32 $shape in [0, 1], one $seconds s window's log-mel picture ($layout).")
TEXT_INPUT = Template("Inputs $tensors, made from the text by the steps below.")
IMAGE_LIMITS = Template("The model saw images at $size px and only the classes above: every input gets one of "
                        "them,\nhowever unlike the training images it is.")
SOUND_LIMITS = Template("The model hears $seconds s windows and knows only the classes above: every window gets one "
                        "of them,\nhowever unlike the training sounds it is.")
TEXT_LIMITS = Template("The model reads the first $max_length of a text and knows only the classes above: every "
                       "text\ngets one of them, however unlike the training texts it is.")

CLASSIFIER = Template("""\
$article classifier for $n_classes classes: $class_list.
Backbone `$backbone` $origin (the workspace has $n_items $plural),
then trained ($fine_tuning) on $n_labels labels.

$accuracy

| class | labels |
|---|---|
$class_rows
""")

ACCURACY = Template("""\
**Estimated accuracy: $mean%$interval** ($detail). ${measure}Few labels make this estimate rough;
check it on $plural of your own before relying on it.$unbalanced""")

BALANCED = "It is class-balanced: the mean of the per-class accuracies, so every class counts the same. "

UNBALANCED = Template("""

The labels are very unbalanced (the largest class has $ratio times the labels of the smallest): the
estimate leans on the few labels of the small classes.""")

NO_ACCURACY = "No accuracy estimate is available for this model (too few labels to cross-validate)."

ENCODER = Template("""\
The encoder alone: backbone `$backbone` $origin. It maps
$an_item to a $feature_dim-dimensional feature vector (for search, clustering or your own classifier).
No classifier was exported.
""")

VERIFIED = Template("""\
Each model file was loaded back and run on $n $inputs; its outputs differ from the app's torch
model by at most $worst (limit $limit).$note""")

NOISE_NOTE = Template(" These were $what, not workspace $plural: $note.")
CHECK_INPUTS = {"random noise": "random-noise images", "workspace images": "cached workspace images",
                "workspace sounds": "cached workspace sounds (their log-mel pictures)",
                "workspace texts": "cached workspace texts", "fixed example texts": "fixed example texts"}
NOT_THE_WORKSPACE = {"random noise": "random-noise inputs", "fixed example texts": "fixed example texts"}

QUANTIZED = Template("""
`$file` ($type, $mb MB, $ratio of the $fp32_mb MB float32 model): $method. It cannot match the
full model to 1e-4; on $n $inputs$calibration it picks the same class as the app's float32 model
for **$agree%** of them; its probabilities differ by at most $max_diff (mean $mean_diff).$advice
""")

QUANTIZED_ADVICE = Template(" That is poor agreement: where the answers matter, use `classifier.onnx`$alt.")

LEFT_OUT = Template("""\
Not in this export (the default is what runs the model: the ONNX classifier, and its safetensors
weights for PyTorch): $files. $how""")

PROPAGATED = Template("`propagated` rows are the model's own confident guesses (confidence >= $threshold), "
                      "not a person's labels.")
NO_PROPAGATED = "No `propagated` rows (machine guesses) were added."

FORMAT_WHAT = {"onnx": "ONNX (dynamic batch, single file; onnxruntime)", "torchscript": "TorchScript (torch.jit.load)",
               "safetensors": "weights (safetensors) for sslapp's model classes"}
ORIGINS = {"imagenet": "with ImageNet weights (supervised, frozen)",
           "patches": "a whitened-patch dictionary fitted on the workspace's images",
           "pixels": "a pixel PCA fitted on the workspace's images"}
SOUND_ORIGINS = {"imagenet": "with ImageNet weights (supervised, frozen), reading log-mel pictures",
                 "patches": "a whitened-patch dictionary fitted on the workspace's log-mel pictures",
                 "mfcc": "(MFCC statistics and contour: mean and spread of 20 MFCCs and their deltas over the "
                         "frames that hold sound, and the 20 MFCCs at 10 moments across them) standardised on the "
                         "workspace's sounds"}
# how a label file's `path` names an item that is one part of a file
PART_NAMES = {"text": " (`FILE:ROW` for a row of a table)",
              "audio": " (`FILE:START` for a window of a longer recording, e.g. `long.wav:12.288s`)"}
ONE_ITEM = {"image": "an image", "audio": "a sound window's log-mel picture", "text": "a text"}


def _origin(m: dict[str, Any]) -> str:
    """Where the encoder's weights came from: its config's `method`, or a text encoder's own account."""
    if enc := m.get("text_encoder"):
        if enc.get("start") == "minilm" and enc.get("tuned"):
            return (f"tuned with self-supervised `{enc['tuned'].get('method')}` on the workspace's texts from revision "
                    f"{str(enc.get('revision'))[:12]}, {enc['dim']}-d sentence vectors")
        if enc.get("start") == "word2vec":
            return (f"(Word2Vec + SIF) word vectors trained with self-supervised `word2vec` on the workspace's texts, "
                    f"{enc.get('terms', 0):,} words, {enc['dim']}-d")
        if enc.get("start") == "minilm":
            return f"frozen at revision {str(enc.get('revision'))[:12]}, {enc['dim']}-d sentence vectors"
        if enc.get("start") == "local":
            return (f"(a {enc.get('layout')} folder added from {enc.get('source')}, weights sha256 "
                    f"{str(enc.get('weights_sha256'))[:12]}) frozen, {enc['dim']}-d sentence vectors")
        return f"(TF-IDF + SVD) fitted on the workspace's texts, {enc.get('terms', 0):,} words to {enc['dim']} dimensions"
    method, kind = m["ssl_method"], _kind(m)
    origin = (SOUND_ORIGINS if kind.name == "audio" else ORIGINS).get(method)
    return origin or f"pretrained with self-supervised `{method}` on the workspace's {kind.plural}"


def _kind(m: dict[str, Any]) -> Modality:
    """The exported model's kind of item (exports before model.json said so hold images)."""
    return get_modality(m.get("modality") or "image")


def _model_section(m: dict[str, Any]) -> str:
    if m["kind"] != "classifier":
        return ENCODER.substitute(backbone=m["backbone"], origin=_origin(m), feature_dim=m["feature_dim"],
                                  an_item=ONE_ITEM.get(_kind(m).name, f"a {_kind(m).noun}"))
    td, acc, kind = m["training_data"], m.get("estimated_accuracy"), _kind(m)
    if acc and acc.get("mean") is not None:
        low, high = acc.get("low"), acc.get("high")
        ratio = acc.get("imbalance")
        accuracy = ACCURACY.substitute(mean=f"{100 * acc['mean']:.1f}", plural=kind.plural,
                                       interval="" if low is None else f" (95% interval {100 * low:.0f}-{100 * high:.0f}%)",
                                       detail=acc.get("text") or f"{acc['how']}, {acc.get('n_labels')} labels",
                                       measure=BALANCED if acc.get("measure", "").startswith("class-balanced") else "",
                                       unbalanced=UNBALANCED.substitute(ratio=f"{ratio:.1f}")
                                       if acc.get("unbalanced") and ratio else "")
    else:
        accuracy = NO_ACCURACY
    rows = "\n".join(f"| {c} | {td['labels_per_class'].get(c, '?')} |" for c in m["classes"])
    article = f"{'An' if kind.noun[0] in 'aeiou' else 'A'} {kind.noun}"
    return CLASSIFIER.substitute(article=article, plural=kind.plural, n_classes=len(m["classes"]),
                                 class_list=", ".join(m["classes"]), backbone=m["backbone"], origin=_origin(m),
                                 n_items=td["items_in_workspace"], fine_tuning=td.get("fine_tuning") or "head",
                                 n_labels=td.get("n_labels") or "?", accuracy=accuracy, class_rows=rows)


def _files_section(m: dict[str, Any]) -> str:
    parts = m.get("parts") or (("classifier", "encoder") if m["kind"] == "classifier" else ("encoder",))
    rows = [f"| `{MODEL_FILES[(part, fmt)]}` | {part}: {FORMAT_WHAT[fmt]} |" for part in parts for fmt in m["formats"]]
    if q := m.get("quantized"):
        rows.append(f"| `{q['file']}` | classifier: ONNX quantized to {q['type']} (smaller; see below) |")
    rows += ["| `model.json` | classes, input, preprocessing, training data, accuracy, checks, file checksums |",
             "| `labels.csv`, `labels.json` | labels: item path, class, source (user, imported, propagated), "
             "annotator, confidence of propagated ones |",
             "| `labels.label-studio.json`, `labels.coco.json` | the same labels for Label Studio (tasks with a "
             "`choices` annotation; machine guesses as predictions) and COCO-style classification tools |"]
    enc = m.get("text_encoder") or {}
    if enc.get("tokenizer"):
        rows.append(f"| `{enc['tokenizer']}` | the tokenizer ({enc.get('model')}'s file as it was given; set it "
                    "as model.json's `text_encoder` says) |")
    if enc.get("vocabulary"):
        rows.append(f"| `{enc['vocabulary']}` | the words the model counts, in the order of its `counts` columns |")
    if m.get("predict_model"):
        rows.append("| `predict_onnx.py` | " + ("a standalone script (onnxruntime, soundfile, numpy) with sslapp's sound "
                                               "front end inside; its use is below |" if _kind(m).name == "audio"
                                               else "the snippet below |"))
    if m.get("imagefolder"):
        rows.append("| `imagefolder/<class>/` | originals of the images a person labelled |")
    return "\n".join(rows)


def _verification_section(m: dict[str, Any]) -> str:
    v = m.get("verification") or {}
    diffs = v.get("max_abs_diff") or {}
    if not diffs:
        return "No model file was checked against the torch model."
    source = v.get("inputs") or "workspace images"
    note = ""
    if source in NOT_THE_WORKSPACE:
        note = NOISE_NOTE.substitute(what=NOT_THE_WORKSPACE[source], plural=_kind(m).plural,
                                     note=v.get("note") or "reason unknown")
    return VERIFIED.substitute(n=v.get("n_inputs", "?"), inputs=CHECK_INPUTS.get(source, source),
                               worst=f"{max(diffs.values()):.1e}", limit=v.get("limit"), note=note)


def _left_out_section(m: dict[str, Any]) -> str:
    left = m.get("left_out") or {}
    if not left.get("files"):
        offered = m["kind"] == "classifier" and "quantize" in _kind(m).export_extras
        return "Every model format was exported." + ("" if m.get("quantized") or not offered else
                                                     " A quantized ONNX classifier is `--quantize fp16|int8` away.")
    return LEFT_OUT.substitute(files=", ".join(f"`{f}`" for f in left["files"]), how=left["how"])


def _quantized_section(m: dict[str, Any]) -> str:
    q = m.get("quantized")
    if not q:
        return ""
    calibration = ""
    if "calibration_images" in q:
        calibration = f" ({q['calibration_images']} {'of them' if q['calibration_images_checked_too'] else 'others'}" \
                      " calibrated it)"
    advice = "" if q["top1_agreement"] >= GOOD_QUANTIZED_AGREEMENT else QUANTIZED_ADVICE.substitute(
        alt=" or an fp16 export (`--quantize fp16`)" if q["type"] == "int8" else "")
    return QUANTIZED.substitute(file=q["file"], type=q["type"], mb=f"{q['bytes'] / 1e6:.1f}",
                                fp32_mb=f"{q['fp32_bytes'] / 1e6:.1f}", ratio=f"{q['bytes'] / q['fp32_bytes']:.0%}",
                                method=q["method"], n=q["n_images"], calibration=calibration,
                                inputs=CHECK_INPUTS.get(q.get("inputs"), "cached workspace images"),
                                agree=f"{100 * q['top1_agreement']:.1f}", max_diff=f"{q['max_abs_prob_diff']:.4f}",
                                mean_diff=f"{q['mean_abs_prob_diff']:.5f}", advice=advice)


def model_card(manifest: dict[str, Any], snippet: str | None) -> str:
    """README.md for the export folder: what the model is, how good, how it was checked, how to use it."""
    m = manifest
    labels = m["labels"]
    threshold = labels.get("propagate_threshold")
    kind, enc = _kind(m), m.get("text_encoder")
    if enc:
        tensors = ", ".join(f"`{n}` {t['dtype']} {t['shape']}" for n, t in m["input"]["tensors"].items())
        input_line = TEXT_INPUT.substitute(tensors=tensors)
        reads = (f"{enc['max_length']} word pieces" if enc.get("max_length") else
                 f"{m['preprocessing'].get('max_bytes', 0):,} bytes")
        limits = TEXT_LIMITS.substitute(max_length=reads)
    elif kind.name == "audio":
        seconds = m["preprocessing"]["window_seconds"]
        input_line = SOUND_INPUT.substitute(name=m["input"]["name"], shape=m["input"]["shape"], seconds=seconds,
                                            layout=m["input"].get("layout", "NCHW"))
        limits = SOUND_LIMITS.substitute(seconds=seconds)
    else:
        input_line = IMAGE_INPUT.substitute(name=m["input"]["name"], shape=m["input"]["shape"])
        limits = IMAGE_LIMITS.substitute(size=m["input"]["size"])
    return CARD.substitute(
        noun=kind.noun, row_note=PART_NAMES.get(kind.name, ""),
        input_line=input_line, limits=limits,
        kind="classifier" if m["kind"] == "classifier" else "encoder", created_at=m["created_at"],
        sslapp_version=m["sslapp_version"], format_version=m["format_version"], model=_model_section(m),
        files=_files_section(m), left_out=_left_out_section(m), quantized=_quantized_section(m),
        output_name=m["output"]["name"], output_meaning=m["output"]["meaning"],
        steps="\n".join(f"{i}. {s}" for i, s in enumerate(m["preprocessing"]["steps"], 1)),
        verification=_verification_section(m), usage=usage_section(m, snippet), n_rows=labels["rows"],
        by_source=", ".join(f"{k}: {v}" for k, v in labels["by_source"].items()) or "none",
        propagated=PROPAGATED.substitute(threshold=threshold) if threshold is not None else NO_PROPAGATED)
