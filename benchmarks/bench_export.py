"""Export faithfulness and `sslapp predict` speed on real images, beside torch measured in the same run.

Writes N CIFAR-10 images (synthetic blobs without the shared data) as PNG files, labels 5 per class
through class folders, ingests them, runs the real finetune job (linear probe on a randomly
initialised resnet18-std encoder: the point is faithfulness, not accuracy), exports, then:

- faithfulness: the probabilities the app stores vs `predict` on the files (ONNX via onnxruntime)
  and vs the TorchScript export on the cached rows;
- speed: the ONNX model through onnxruntime vs the same torch model (eager), same arrays, one
  thread each; and `predict` end to end from files (read + decode + model).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_export.py [--n 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.data import load_dataset  # noqa: E402
from sslapp.bench.data import synthetic_images  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--per-class", type=int, default=5)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from sslapp.cli.common import run_job_in_foreground
    from sslapp.export.export import export_workspace
    from sslapp.export.predict import Predictor
    from sslapp.ingest.cache import read_cache
    from sslapp.ingest.ingest import ingest
    from sslapp.models.encoder import Encoder, EncoderConfig, save_encoder
    from sslapp.workspace import open_workspace

    torch.set_num_threads(1)
    data = load_dataset("cifar10", args.n)
    if data is None:
        images, labels = synthetic_images(args.n, 32, 4)
        names, source = [f"kind{i}" for i in range(4)], "synthetic"
    else:
        images, labels, names = *data[:2], data[2]
        source = "cifar10"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seen: dict[int, int] = {}
        for i, (img, y) in enumerate(zip(images, labels, strict=True)):
            labelled = seen.get(int(y), 0) < args.per_class
            seen[int(y)] = seen.get(int(y), 0) + labelled
            folder = root / "files" / ("labelled/" + names[int(y)] if labelled else "unlabelled")
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:05d}.png")
        ws = open_workspace(root / "ws", cache_size=32)
        ingest(ws, [root / "files" / "labelled"], labels_from_dirs=True, workers=1)
        ingest(ws, [root / "files" / "unlabelled"], workers=1)
        torch.manual_seed(0)
        save_encoder(Encoder(EncoderConfig("resnet18-std", 32, 32, method="none")), ws.checkpoints_dir / "enc.safetensors")
        ws.store.add_artifact("encoder", "checkpoints/enc.safetensors", {"method": "none"})
        ws.store.set_setting("features.starts", [])  # no starting encoders: the probe is on this one
        job = run_job_in_foreground(ws, "finetune", {"mode": "linear", "propagate": "off"})
        assert job["status"] == "done", job["error"]

        t = time.perf_counter()
        export_workspace(ws, root / "out", formats=("onnx", "torchscript", "safetensors"), encoder_files=True)
        export_s = time.perf_counter() - t

        # faithfulness ------------------------------------------------------------------
        predictor = Predictor(root / "out", threads=1)
        t = time.perf_counter()
        results = predictor.predict([root / "files"], top_k=len(predictor.classes))
        predict_s = time.perf_counter() - t
        by_path = {r["path"]: dict(r["top_k"]) for r in results}
        items = {it["id"]: it for it in ws.store.items()}
        shown = ws.store.predictions()
        diff, agree = 0.0, 0
        for p in shown:
            r = by_path[items[p["item_id"]]["source"]]
            diff = max(diff, abs(r[p["class_name"]] - p["confidence"]))
            agree += max(r, key=r.get) == p["class_name"]
        cache = np.array(read_cache(ws))  # a writable copy for torch.from_numpy
        x = torch.from_numpy(cache).permute(0, 3, 1, 2).float() / 255
        ts = torch.jit.load(str(root / "out" / "classifier.torchscript.pt"))
        from sslapp.finetune.model import load_classifier

        model = load_classifier(root / "out" / "classifier.safetensors")
        with torch.inference_mode():
            ts_diff = float((ts(x) - model(x)).abs().max())

        # speed: same arrays, batch 32, one thread --------------------------------------
        def rate(fn) -> float:
            fn(cache[:32])  # warm up
            t = time.perf_counter()
            for s in range(0, len(cache), 32):
                fn(cache[s:s + 32])
            return len(cache) / (time.perf_counter() - t)

        def torch_eager(batch):
            with torch.inference_mode():
                return model(torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float() / 255)

        ort_rate, torch_rate = rate(predictor.probabilities), rate(torch_eager)
        size_mb = sum(p.stat().st_size for p in (root / "out").iterdir() if p.is_file()) / 1e6
    print(f"data: {len(images)} {source} images as PNG, {sum(seen.values())} labels, cache 32 px, resnet18-std")
    print(f"export (6 model files + labels + card): {export_s:.1f} s, {size_mb:.0f} MB")
    print(f"faithfulness: app vs ONNX predict max |dp| = {diff:.2e}, same class {agree}/{len(shown)}; "
          f"TorchScript vs torch max |dp| = {ts_diff:.2e}")
    print(f"model only, batch 32, 1 thread: onnxruntime {ort_rate:.0f} img/s | torch eager (reference) "
          f"{torch_rate:.0f} img/s")
    print(f"sslapp predict end to end (read + decode + ONNX): {len(results) / predict_s:.0f} img/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
