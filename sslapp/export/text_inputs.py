"""A text export's model inputs made from texts, without torch: token ids from the export's tokenizer.json
(MiniLM, or the user's own transformer) or term counts of its vocabulary.json's words (TF-IDF, Word2Vec + SIF), as model.json's
`text_encoder` says.

The export's own check (`text_export`) and `sslapp predict` both feed the model through here, so the
check covers the tokenisation `sslapp predict` uses, read from the export folder and not from the app.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sslapp.export.manifest import ExportError

COUNT_BATCH = 256  # texts per TF-IDF batch: a dense (batch, terms) float32 array, 20 MB at 20,000 terms


class TextInputs:
    """Texts -> batches of (rows of the texts, {input name: array}) for the model `encoder` describes."""

    def __init__(self, export_dir: str | Path, encoder: dict[str, Any]):
        root = Path(export_dir)
        self.start = encoder.get("start")
        if "tokenizer" in encoder:  # MiniLM, frozen or tuned, or the user's own model: word pieces
            from sslapp.models.text.tokens import load_tokenizer

            self.tokenizer = load_tokenizer(root / encoder["tokenizer"], int(encoder["max_length"]))
            self.pad_id = int(encoder.get("pad_id", 0))  # exports before pad_id was written padded with 0
        elif "vocabulary" in encoder:  # TF-IDF, Word2Vec + SIF: word counts
            from sslapp.models.text.terms import count_vectorizer

            vocabulary = json.loads((root / encoder["vocabulary"]).read_text(encoding="utf-8"))
            self.counter = count_vectorizer(encoder, vocabulary)
        else:
            raise ExportError(f"{root} holds a text model of an unknown kind {self.start!r}; a newer sslapp wrote "
                              "it. Use the sslapp that wrote it, or its predict_onnx.py.")

    def batches(self, texts: list[str]) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        if hasattr(self, "tokenizer"):
            from sslapp.models.text.tokens import TOKEN_BUDGET, padded_batches

            for rows, ids, mask in padded_batches(self.tokenizer, texts, TOKEN_BUDGET, pad_id=self.pad_id):
                yield rows, {"input_ids": ids, "attention_mask": mask}
            return
        from sslapp.models.text.terms import term_counts

        for start in range(0, len(texts), COUNT_BATCH):
            rows = np.arange(start, min(start + COUNT_BATCH, len(texts)))
            yield rows, {"counts": term_counts(self.counter, texts[start:rows[-1] + 1])}


def text_probabilities(inputs: TextInputs, texts: list[str], run: Callable[[dict[str, np.ndarray]], np.ndarray],
                       n_classes: int) -> np.ndarray:
    """(N, n_classes) float32: `run` (a model on one batch of named inputs) over `texts`, in their order."""
    out = np.zeros((len(texts), n_classes), np.float32)
    for rows, feeds in inputs.batches(texts):
        out[rows] = run(feeds)
    return out
