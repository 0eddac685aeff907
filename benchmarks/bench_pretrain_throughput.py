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

from benchmarks.data import load_dataset  # noqa: E402
from sslapp.bench.data import synthetic_images, workspace_from_arrays  # noqa: E402


def _model(backbone: str):
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    from sslapp.models.backbones import build_backbone

    bb = build_backbone(backbone, 32)
    model = torch.nn.Sequential(bb.module, SimCLRProjectionHead(bb.dim, 512, 128))
    opt = torch.optim.SGD(model.parameters(), lr=0.06, momentum=0.9, weight_decay=5e-4)
    return model, opt, NTXentLoss(temperature=0.2)


class _Lightly:
    """lightly's docs pipeline: SimCLRTransform per PIL image in DataLoader workers, NTXentLoss."""

    def __init__(self, images: np.ndarray, backbone: str, batch: int, workers: int):
        from lightly.transforms import SimCLRTransform
        from PIL import Image

        transform = SimCLRTransform(input_size=32, gaussian_blur=0.0)

        class DS(torch.utils.data.Dataset):
            def __len__(self):
                return len(images)

            def __getitem__(self, i):
                return transform(Image.fromarray(images[i]))

        self.loader = torch.utils.data.DataLoader(DS(), batch_size=batch, shuffle=True, drop_last=True,
                                                  num_workers=workers, persistent_workers=workers > 0)
        self.it = iter(self.loader)
        self.model, self.opt, self.crit = _model(backbone)

    def step(self) -> None:
        try:
            views = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            views = next(self.it)
        loss = self.crit(self.model(views[0]), self.model(views[1]))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()


class _Ceiling:
    """The same model stepping on two ready, normalised view tensors: no data path at all."""

    def __init__(self, backbone: str, batch: int):
        self.model, self.opt, self.crit = _model(backbone)
        self.x = torch.randn(2 * batch, 3, 32, 32)

    def step(self) -> None:
        z = self.model(self.x)
        loss = self.crit(*z.chunk(2))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()


class _Sslapp:
    """sslapp's loop itself (`pretrain`), run for a few steps per round from its own checkpoint-free state."""

    def __init__(self, ws, backbone: str, batch: int):
        self.ws, self.backbone, self.batch = ws, backbone, batch

    def run(self, steps: int) -> float:
        from sslapp.ssl.train import pretrain

        # images_per_s leaves out the first step of the call (warm-up), like the other timings
        result = pretrain(self.ws, {"method": "simclr", "backbone": self.backbone, "batch_size": self.batch,
                                    "epochs": 1000, "max_steps": steps + 1, "probe": False, "device": "cpu"})
        return float(result["images_per_s"])


def measure(images, ws, backbone: str, batch: int, steps: int, rounds: int, workers: int) -> dict:
    """Interleave the three pipelines in `rounds` rounds of `steps` steps, so load from other
    processes on a shared machine falls on all three alike; report the median round of each."""
    lightly, ceil, ours = _Lightly(images, backbone, batch, workers), _Ceiling(backbone, batch), _Sslapp(ws, backbone, batch)
    lightly.step()
    ceil.step()  # warm-up
    out = {"sslapp": [], "lightly_style": [], "ceiling": []}
    for _ in range(rounds):
        for name, obj in (("ceiling", ceil), ("lightly_style", lightly)):
            t = time.perf_counter()
            for _ in range(steps):
                obj.step()
            out[name].append(steps * batch / (time.perf_counter() - t))
        out["sslapp"].append(ours.run(steps))
    return {k: float(np.median(v)) for k, v in out.items()} | {f"{k}_rounds": [round(x, 1) for x in v]
                                                                for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--limit", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--backbones", default="resnet18-std,resnet18")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per pipeline per round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is reported)")
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
        res = {"backbone": backbone, "dataset": f"{name}-{len(images)}", "batch": args.batch,
               "steps_per_round": args.steps, "rounds": args.rounds, "threads": torch.get_num_threads()}
        res |= measure(images, ws, backbone, args.batch, args.steps, args.rounds, args.workers)
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
