"""Classify images with this export's ONNX model, using onnxruntime, Pillow and numpy only.

    pip install onnxruntime pillow numpy
    python predict_onnx.py photo1.jpg photo2.png
    python predict_onnx.py --model classifier.int8.onnx photo1.jpg   # a quantized copy, if exported

The preprocessing below is sslapp's, step for step, so the classes and confidences match the app
(for 8-bit images; for 16-bit or floating-point TIFFs use `sslapp predict`, which scales them as
the app does).
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
META = json.loads((HERE / "model.json").read_text(encoding="utf-8"))
SIZE = META["input"]["size"]
CLASSES = META["classes"]
MODEL = META.get("predict_model") or "classifier.onnx"


def load(path):
    """File -> float32 (3, SIZE, SIZE) in [0, 1], RGB: first frame, EXIF turn, centre square, bicubic."""
    img = Image.open(path)
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    if img.format in ("JPEG", "MPO") and min(img.size) >= 2 * SIZE:
        img.draft("RGB", (SIZE, SIZE))  # sslapp decodes large JPEGs at a reduced scale too
    img.load()
    img = ImageOps.exif_transpose(img) or img
    if (img.mode == "P" and "transparency" in img.info) or img.mode in ("PA", "RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")  # transparent pixels over white
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    img = img.convert("RGB")
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    img = img.crop((left, top, left + s, top + s))
    if img.size != (SIZE, SIZE):
        img = img.resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)


def main(paths, model=MODEL):
    if paths[:1] == ["--model"]:
        model, paths = paths[1], paths[2:]
    session = ort.InferenceSession(str(HERE / model), providers=["CPUExecutionProvider"])
    for path in paths:
        probs = session.run(None, {"image": load(path)[None]})[0][0]
        best = int(np.argmax(probs))
        print(f"{path}\t{CLASSES[best]}\t{probs[best]:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
