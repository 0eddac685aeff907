"""Classify sounds with this export's ONNX model, using onnxruntime, soundfile and numpy only.

    pip install onnxruntime soundfile numpy
    python predict_onnx.py call.wav recordings/long.flac
    python predict_onnx.py --json call.wav                 # every class's probability, as JSON
    python predict_onnx.py --model classifier.int8.onnx call.wav   # a quantized copy, if exported

Each file is cut into windows of 1.024 s and each window classified: a recording shorter than one and a half
windows is one result named by its file, a longer one gives one result per window, named
FILE:START ("long.wav:12.288s"), as sslapp names it. The sound front end below is sslapp's own
(sslapp/modalities/audio/frontend.py, copied in whole when the model was exported), so the classes and
probabilities match the app. Files that cannot be read are reported on stderr and skipped.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf

from sslapp.modalities.audio.frontend import mono, window_rows  # sslapp: frontend (its source, at export)

HERE = Path(__file__).resolve().parent
META = json.loads((HERE / "model.json").read_text(encoding="utf-8"))
CLASSES = META["classes"]
INPUT = META["input"]["name"]
MODEL = META.get("predict_model") or "classifier.onnx"
MIN_SECONDS = 0.05  # sslapp: MIN_SECONDS (a shorter recording is refused, as sslapp refuses it)
BATCH = 32


def windows(path):
    """A sound file -> [(name, uint8 log-mel row)], one per window; raises ValueError with what was wrong."""
    data = Path(path).read_bytes()
    if not data:
        raise ValueError("empty: the file is empty (0 bytes)")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate = f.samplerate
            signal = mono(f.read(dtype="float32", always_2d=True))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"not-audio: not a sound file soundfile can read ({exc})") from None
    if len(signal) == 0:
        raise ValueError("zero-length: the file holds no sound (0 samples)")
    if len(signal) / rate < MIN_SECONDS:
        raise ValueError(f"too-short: {len(signal) / rate * 1000:.0f} ms of sound")
    cut = window_rows(signal, rate)
    for start, wave, _ in cut:  # as sslapp checks them: the windows it keeps, not a tail it leaves out
        if not np.isfinite(wave).all():
            raise ValueError(f"corrupt: the samples at {start:.1f} s hold NaN or infinite values")
    if len(cut) == 1:
        return [(str(path), cut[0][2])]
    return [(f"{path}:{start:.3f}s", row) for start, _, row in cut]


def model_input(rows):
    """uint8 (B, MELS, FRAMES) rows -> float32 (B, 3, MELS, FRAMES) in [0, 1], the picture as a grey image."""
    grey = np.stack(rows).astype(np.float32)[:, None] / 255.0
    return np.ascontiguousarray(np.repeat(grey, 3, axis=1))


def main(args):
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    model = MODEL
    if args[:1] == ["--model"]:
        model, args = args[1], args[2:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    named = []
    for path in args:
        try:
            named += windows(path)
        except (OSError, ValueError) as exc:
            print(f"skipped {path}: {exc}", file=sys.stderr)
    session = ort.InferenceSession(str(HERE / model), providers=["CPUExecutionProvider"])
    out = []
    for i in range(0, len(named), BATCH):
        batch = named[i:i + BATCH]
        probs = session.run(None, {INPUT: model_input([row for _, row in batch])})[0]
        for (name, _), p in zip(batch, probs, strict=True):
            best = int(np.argmax(p))
            out.append({"path": name, "class": CLASSES[best], "confidence": float(p[best]),
                        "probabilities": {c: float(v) for c, v in zip(CLASSES, p, strict=True)}})
            if not as_json:
                print(f"{name}\t{CLASSES[best]}\t{p[best]:.4f}")
    if as_json:
        print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0 if out else 1  # 1: nothing could be classified


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
