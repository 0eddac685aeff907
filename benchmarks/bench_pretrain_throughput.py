"""Pretraining throughput: sslapp's SimCLR vs the lightly-docs pipeline vs the compute ceiling.

All three train the same model (ResNet-18 + SimCLR projection head, NT-Xent, SGD) at 32 px on
the same images in one process run:

* sslapp: `sslapp.ssl.train.pretrain` on a workspace cache (uint8 batches, views on the device);
* lightly-style: lightly's `SimCLRTransform` per PIL image in 2 DataLoader workers, `NTXentLoss`,
  as lightly's SimCLR example does;
* ceiling: the same model stepping on two ready, normalised view tensors (no data path at all).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_pretrain_throughput.py --limit 5000

Prints one JSON line per measurement and a summary table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.data import load_dataset, synthetic_images, workspace_from_arrays  # noqa: E402


def _model(backbone: str):
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    from sslapp.ssl.backbones import build_backbone

    bb = build_backbone(backbone, 32)
    model = torch.nn.Sequential(bb.module, SimCLRProjectionHead(bb.dim, 512, 128))
    opt = torch.optim.SGD(model.parameters(), lr=0.06, momentum=0.9, weight_decay=5e-4)
    return model, opt, NTXentLoss(temperature=0.2)


def _time_steps(step, batches, warmup: int, steps: int, batch: int) -> float:
    it = iter(batches)
    for _ in range(warmup):
        step(*next(it))
    start = time.perf_counter()
    for _ in range(steps):
        step(*next(it))
    return steps * batch / (time.perf_counter() - start)


def lightly_style(images: np.ndarray, backbone: str, batch: int, warmup: int, steps: int, workers: int) -> float:
    from lightly.transforms import SimCLRTransform
    from PIL import Image

    transform = SimCLRTransform(input_size=32, gaussian_blur=0.0)

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return transform(Image.fromarray(images[i]))

    loader = torch.utils.data.DataLoader(DS(), batch_size=batch, shuffle=True, drop_last=True,
                                         num_workers=workers, persistent_workers=workers > 0)
    model, opt, crit = _model(backbone)

    def step(views):
        z0, z1 = model(views[0]), model(views[1])
        loss = crit(z0, z1)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def forever():
        while True:
            for views in loader:
                yield (views,)

    return _time_steps(step, forever(), warmup, steps, batch)


def ceiling(backbone: str, batch: int, warmup: int, steps: int) -> float:
    model, opt, crit = _model(backbone)
    x0, x1 = torch.randn(batch, 3, 32, 32), torch.randn(batch, 3, 32, 32)

    def step():
        z = model(torch.cat([x0, x1]))
        loss = crit(*z.chunk(2))
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _time_steps(step, iter(lambda: (), None), warmup, steps, batch)


def sslapp_run(ws, backbone: str, batch: int, warmup: int, steps: int) -> float:
    from sslapp.ssl.train import pretrain

    # images_per_s of the result leaves out this process's first step (warm-up), like the others
    result = pretrain(ws, {"method": "simclr", "backbone": backbone, "batch_size": batch, "epochs": 100,
                           "max_steps": warmup + steps, "probe": False, "device": "cpu"})
    return float(result["images_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--limit", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--backbones", default="resnet18-std,resnet18")
    ap.add_argument("--steps", type=int, default=8, help="timed steps (standard stem; small stem uses a third)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.limit)
    images = data[0] if data is not None else synthetic_images(args.limit, 32)[0]
    name = args.dataset if data is not None else "synthetic"
    tmp = tempfile.mkdtemp(prefix="bench-throughput-")
    ws = workspace_from_arrays(os.path.join(tmp, "ws"), images)
    rows = []
    for backbone in args.backbones.split(","):
        steps = args.steps if backbone.endswith("-std") else max(2, args.steps // 3)
        warmup = 2 if backbone.endswith("-std") else 1
        res = {"backbone": backbone, "dataset": f"{name}-{len(images)}", "batch": args.batch, "steps": steps,
               "threads": torch.get_num_threads()}
        res["ceiling"] = ceiling(backbone, args.batch, warmup, steps)
        res["sslapp"] = sslapp_run(ws, backbone, args.batch, warmup, steps)
        res["lightly_style"] = lightly_style(images, backbone, args.batch, warmup, steps, args.workers)
        res["sslapp_vs_ceiling"] = res["sslapp"] / res["ceiling"]
        res["sslapp_vs_lightly"] = res["sslapp"] / res["lightly_style"]
        res["lightly_vs_ceiling"] = res["lightly_style"] / res["ceiling"]
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}), flush=True)
        rows.append(res)
    print(f"\n{'backbone':<14}{'sslapp':>10}{'lightly':>10}{'ceiling':>10}{'ours/ceil':>11}{'ours/lightly':>14}")
    for r in rows:
        print(f"{r['backbone']:<14}{r['sslapp']:>10.1f}{r['lightly_style']:>10.1f}{r['ceiling']:>10.1f}"
              f"{r['sslapp_vs_ceiling']:>11.2f}{r['sslapp_vs_lightly']:>14.2f}")


if __name__ == "__main__":
    main()
