"""Classify texts with this export's ONNX model, using onnxruntime and numpy (and `tokenizers` for word pieces).

    pip install onnxruntime numpy tokenizers
    python predict_onnx.py note1.txt note2.txt          # one text per file
    python predict_onnx.py - < texts.txt                # one text per line
    python predict_onnx.py --json note1.txt             # every class's probability, as JSON

The steps below are sslapp's, step for step (model.json lists them), so the classes and probabilities
match the app; for tables (CSV, TSV, JSON Lines, Parquet) use `sslapp predict`, which reads them as
ingestion does.
"""

import json
import re
import sys
import unicodedata
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
META = json.loads((HERE / "model.json").read_text(encoding="utf-8"))
CLASSES = META["classes"]
ENCODER = META["text_encoder"]
MAX_BYTES = META["preprocessing"]["max_bytes"]
BATCH = 32


def normalise(text):
    """Whitespace runs become one space, NULs dropped, ends stripped; at most MAX_BYTES of UTF-8."""
    text = re.sub(r"\s+", " ", text.replace("\x00", " ")).strip()
    return text.encode("utf-8")[:MAX_BYTES].decode("utf-8", errors="ignore")


def read(path):
    """A .txt file's text: UTF-16 when it starts with a UTF-16 byte-order mark, else UTF-8 (BOM dropped)."""
    data = Path(path).read_bytes()
    return data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data.decode("utf-8-sig")


def token_ids(texts):
    """Word pieces cut at max_length, each batch padded with pad_id to its longest (the file may say otherwise)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(HERE / ENCODER["tokenizer"]))
    tokenizer.enable_truncation(ENCODER["max_length"])
    tokenizer.enable_padding(pad_id=ENCODER.get("pad_id", 0), pad_token=ENCODER.get("pad_token", "[PAD]"))
    encodings = tokenizer.encode_batch([t.strip() for t in texts])
    return {"input_ids": np.array([e.ids for e in encodings], np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], np.int64)}


def words(text):
    """TF-IDF: scikit-learn's tokenisation: lowercase, accents stripped (non-ASCII texts), token_pattern matches."""
    if ENCODER["lowercase"]:
        text = text.lower()
    if ENCODER["strip_accents"] == "unicode":
        try:
            text.encode("ascii")
        except UnicodeEncodeError:
            text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    tokens = re.findall(ENCODER["token_pattern"], text)
    low, high = ENCODER["ngram_range"]
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        grams += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return grams


def term_counts(texts):
    vocabulary = json.loads((HERE / ENCODER["vocabulary"]).read_text(encoding="utf-8"))
    column = {word: i for i, word in enumerate(vocabulary)}
    counts = np.zeros((len(texts), len(vocabulary)), np.float32)
    for row, text in enumerate(texts):
        for word in words(text):
            if word in column:
                counts[row, column[word]] += 1
    return {"counts": counts}


def probabilities(session, texts):
    feeds = token_ids if "tokenizer" in ENCODER else term_counts
    return np.concatenate([session.run(None, feeds(texts[i:i + BATCH]))[0] for i in range(0, len(texts), BATCH)])


def main(args):
    as_json = "--json" in args
    named = []
    for arg in (a for a in args if a != "--json"):
        if arg == "-":
            named += [(f"-:{i}", line) for i, line in enumerate(sys.stdin.read().splitlines(), 1)]
        else:
            named.append((arg, read(arg)))
    texts = [(name, normalise(text)) for name, text in named]
    for name, text in texts:
        if not text:
            print(f"skipped {name}: no text (only whitespace)", file=sys.stderr)
    texts = [(name, text) for name, text in texts if text]
    session = ort.InferenceSession(str(HERE / (META.get("predict_model") or "classifier.onnx")),
                                   providers=["CPUExecutionProvider"])
    probs = probabilities(session, [text for _, text in texts]) if texts else []
    out = []
    for (name, _), p in zip(texts, probs, strict=True):
        best = int(np.argmax(p))
        out.append({"path": name, "class": CLASSES[best], "confidence": float(p[best]),
                    "probabilities": {c: float(v) for c, v in zip(CLASSES, p, strict=True)}})
        if not as_json:
            print(f"{name}\t{CLASSES[best]}\t{p[best]:.4f}")
    if as_json:
        print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
