"""A text classifier's model files, checked: one graph from the encoder's inputs to class probabilities.

The workspace's text classifier is a head on a text encoder's vectors; `TextClassifier` chains it onto
the encoder's graph (MiniLM or the user's own model: token ids and attention mask -> the transformer ->
pooling -> L2 where the model normalises; TF-IDF: term
counts -> sublinear TF-IDF -> SVD -> L2), written as ONNX (batch and token axes dynamic) and safetensors,
with what makes the inputs from a text beside them (tokenizer.json, or vocabulary.json and the
tokenisation in model.json). Each file is run on texts of the workspace, fed through the export's own
files (`text_inputs`, what `sslapp predict` uses), against the app's own output: the encoder's `embed`
and the classifier's head, as the finetune job computed the predictions. A difference over the limit
refuses the export (`verify.require_faithful`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sslapp.export import verify
from sslapp.export.manifest import MODEL_FILES, ONNX_OUTPUT
from sslapp.export.text_inputs import TextInputs, text_probabilities
from sslapp.export.text_model import TextClassifier, load_text_classifier, save_text_classifier
from sslapp.export.writers import write_onnx
from sslapp.finetune.model import Classifier
from sslapp.modalities import workspace_modality
from sslapp.models.text.base import GraphSpec, TextEncoder
from sslapp.workspace import Workspace

N_CHECK = 8  # texts spread over the workspace, and the longest of CANDIDATES (long texts are cut at 256 word pieces)
CANDIDATES = 256
FALLBACK = ["a short text", "Another text, with punctuation and Ünïcödé.", "numbers 1 2 3 and more words"]


@dataclass
class TextModels:
    """What `write_text_models` wrote: files (name -> manifest entry), the checks, model.json's entries."""

    files: dict[str, dict[str, Any]]
    verification: dict[str, Any]
    model: dict[str, Any]  # model.json's entries about the input, the preprocessing and the encoder
    feature_dim: int


def check_texts(ws: Workspace, n: int = N_CHECK) -> tuple[list[str], str, str | None]:
    """(texts, where they come from, why not the workspace's): up to `n` cached texts spread over the
    workspace plus the longest of a wider spread, or a few fixed texts with the reason."""
    try:
        from sslapp.ingest.cache import read_cache
        from sslapp.modalities.text.arrays import texts_of

        cache = read_cache(ws)
        if len(cache):
            wide = texts_of(np.asarray(cache[np.unique(np.linspace(0, len(cache) - 1, min(CANDIDATES, len(cache)))
                                                       .astype(int))]))
            picked = [wide[i] for i in np.unique(np.linspace(0, len(wide) - 1, min(n, len(wide))).astype(int))]
            longest = max(wide, key=len)
            return picked + ([longest] if longest not in picked else []), "workspace texts", None
        note = "the workspace has no cached texts"
    except Exception as exc:  # a damaged cache must not block an export, but the result must say so
        note = f"the text cache could not be read ({exc.__class__.__name__}: {exc})"
    return list(FALLBACK), "fixed example texts", note


def _torch_run(module: torch.nn.Module, names: list[str]) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            return module(*[torch.from_numpy(feeds[n]) for n in names]).numpy()
    return run


def _onnx_run(path: Path) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    from sslapp.export.onnx_session import cpu_session

    session = cpu_session(path)
    return lambda feeds: session.run(None, feeds)[0]


def write_text_models(ws: Workspace, tmp: Path, formats: tuple[str, ...], classifier: Classifier,
                      encoder: TextEncoder, say: Callable[[str], None], stop: Callable[[], None]) -> TextModels:
    """Write and check the classifier in each of `formats` (ONNX, safetensors) and the input files in `tmp`."""
    spec = encoder.graph_spec()
    module = TextClassifier(encoder.graph(), classifier.eval().cpu()).eval()
    files: dict[str, dict[str, Any]] = {}
    for name, data in spec.files.items():
        (tmp / name).write_bytes(data)
        files[name] = {"part": "text inputs", "format": "json"}
    texts, source, note = check_texts(ws)
    with torch.inference_mode():  # the app: the encoder's vectors, then the classifier's head
        expected = classifier.on_features(torch.from_numpy(encoder.embed(texts))).numpy()
    inputs = TextInputs(tmp, spec.describe)
    names = list(spec.inputs)
    diffs: dict[str, float] = {}
    for fmt in formats:
        stop()
        name = MODEL_FILES[("classifier", fmt)]
        path = tmp / name
        say(f"writing {name}")
        if fmt == "onnx":
            example = tuple(torch.from_numpy(spec.example[n]) for n in names)
            write_onnx(module, example, path, ONNX_OUTPUT["classifier"], input_names=tuple(names), axes=spec.axes)
            run = _onnx_run(path)
        elif fmt == "safetensors":
            save_text_classifier(module, encoder.graph_config(), path)
            run = _torch_run(load_text_classifier(path), names)
        else:
            raise ValueError(f"no text export in format {fmt!r}")
        got = text_probabilities(inputs, texts, run, len(classifier.classes))
        diffs[name] = float(np.abs(got - expected).max())
        verify.require_faithful(name, diffs[name])
        files[name] = {"part": "classifier", "format": fmt}
    return TextModels(files, verify.summary(source, len(texts), note, diffs),
                      text_model(ws, spec, encoder, classifier), int(encoder.dim))


def text_model(ws: Workspace, spec: GraphSpec, encoder: TextEncoder, classifier: Classifier) -> dict[str, Any]:
    """model.json's entries for a text model: its input tensors, the steps from file to probabilities,
    the encoder's own account (`text_encoder`), the head."""
    modality = workspace_modality(ws)
    canonical = modality.preprocessing(0)
    shapes = {n: ["batch", spec.axes.get(n) or int(spec.example[n].shape[1])] for n in spec.inputs}
    d = spec.describe
    if "tokenizer" in d:
        encode = [f"Tokenise with {d['tokenizer']} ({d['model']}), truncated at {d['max_length']} word pieces; pad "
                  f"each batch to its longest text with id {d.get('pad_id', 0)} and attention mask 0 (override the "
                  "file's own truncation and padding settings).",
                  f"Inside the model: {d['inside_model']}."]
    else:
        encode = [f"Count the words of {d['vocabulary']} ({d['terms']:,} words) in the text: {d['words']}.",
                  f"Inside the model: {d['inside_model']}: the app's "
                  f"{'Word2Vec + SIF' if d['start'] == 'word2vec' else 'TF-IDF'} vectors."]
    head = ("Inside the model: the vectors are " + ("L2-normalised again, then " if classifier.normalize else "")
            + "fed to a linear head; softmax gives the probabilities.")
    return {
        "input": {"names": list(spec.inputs),
                  "tensors": {n: {"dtype": dt, "shape": shapes[n]} for n, dt in spec.inputs.items()},
                  **modality.input_spec(0)},
        "preprocessing": {**canonical, "steps": [*canonical["steps"], *encode, head]},
        "text_encoder": dict(d),
        "head": {"type": "linear", "feature_normalisation": "l2" if classifier.normalize else "none",
                 "softmax": True},
        "backbone": d.get("model") or encoder.start,
        "ssl_method": (d.get("tuned") or {}).get("method") or d.get("method"),  # None: frozen or fitted
    }
