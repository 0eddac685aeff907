"""Quality at equal time: kNN accuracy (k=20, cosine, 5-fold) after M minutes of pretraining.

Each config pretrains from scratch on the same images for the same wall-clock budget, then the
final encoder embeds every image and a 5-fold cosine kNN (k=20) scores the embeddings against the
dataset's labels (labels are never used for training). Configs:

* ``auto``: `sslapp pretrain` with everything on auto (what a CPU user gets);
* a method name (``simclr``, ``byol``, ...), optionally ``method@backbone[@size]``: sslapp with that choice,
  plus ``@key=value`` pretrain parameters (``simclr@resnet18-w16@init=patches``);
* ``lightly``: lightly's docs pipeline (SimCLRTransform per PIL image, 2 DataLoader workers,
  NTXentLoss, SGD with cosine decay), optionally ``lightly@backbone``;
* ``random``: the untrained encoder (the floor).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_pretrain_quality.py --dataset cifar10 \\
        --minutes 10 --configs random,auto,simclr,mocov3,byol,swav,dino,mae,rotation,lightly
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.data import datasets_root, load_dataset  # noqa: E402
from sslapp.bench.data import workspace_from_arrays  # noqa: E402


@torch.no_grad()
def embed(encoder, images: np.ndarray, batch: int = 500) -> torch.Tensor:
    encoder.eval()
    out = []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(images[start:start + batch]).permute(0, 3, 1, 2).float().div(255)
        out.append(encoder(x).flatten(1))
    return torch.cat(out)


def knn(features: torch.Tensor, labels: np.ndarray) -> float:
    from sslapp.ssl.probe import knn_accuracy

    return float(knn_accuracy(features, labels, k=20, folds=5, seed=0))


def run_sslapp(ws_root: str, images, config: str, minutes: float, seed: int) -> dict:
    from sslapp.models.encoder import load_encoder
    from sslapp.ssl.train import pretrain
    from sslapp.workspace import open_workspace

    options = [p for p in config.split("@") if "=" in p]  # e.g. init=patches
    parts = [p for p in config.split("@") if "=" not in p]
    params = {"minutes": minutes, "seed": seed, "probe": False, "device": "cpu"}
    params.update(dict(p.split("=", 1) for p in options))
    if parts[0] != "auto":
        params["method"] = parts[0]
    if len(parts) > 1:
        params["backbone"] = parts[1]
    if len(parts) > 2:
        params["train_size"] = int(parts[2])
    result = pretrain(open_workspace(ws_root), params)
    enc = load_encoder(result["encoder"])
    return {"backbone": result["backbone"], "train_size": result["train_size"], "epochs": result["epochs"],
            "steps": result["steps"], "images_per_s": result["images_per_s"],
            "features": embed(enc, images)}


def run_random(images, backbone: str = "resnet18-std") -> dict:
    from sslapp.models.encoder import Encoder, EncoderConfig

    torch.manual_seed(0)
    enc = Encoder(EncoderConfig(backbone=backbone, input_size=images.shape[1], train_size=32))
    return {"backbone": backbone, "train_size": 32, "epochs": 0, "steps": 0, "images_per_s": None,
            "features": embed(enc, images)}


def run_lightly(images, config: str, minutes: float, seed: int, batch: int = 256, workers: int = 2) -> dict:
    """lightly's SimCLR example on these images, stopped at the same wall-clock budget."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform
    from PIL import Image

    from sslapp.models.backbones import build_backbone
    from sslapp.models.encoder import Encoder, EncoderConfig

    backbone = config.split("@")[1] if "@" in config else "resnet18-std"
    batch = min(batch, len(images))  # fewer images than a batch: drop_last would leave no batch, and no end
    torch.manual_seed(seed)
    transform = SimCLRTransform(input_size=32, gaussian_blur=0.0)

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return transform(Image.fromarray(images[i]))

    loader = torch.utils.data.DataLoader(DS(), batch_size=batch, shuffle=True, drop_last=True,
                                         num_workers=workers, persistent_workers=True)
    bb = build_backbone(backbone, 32)
    head = SimCLRProjectionHead(bb.dim, 512, 128)
    params = list(bb.module.parameters()) + list(head.parameters())
    base_lr = 0.06 * batch / 256
    opt = torch.optim.SGD(params, lr=base_lr, momentum=0.9, weight_decay=5e-4)
    crit = NTXentLoss(temperature=0.2)
    budget = minutes * 60
    start = time.monotonic()
    steps = epochs = 0
    done = False
    while not done:
        for views in loader:
            frac = (time.monotonic() - start) / budget
            if frac >= 1:
                done = True
                break
            for g in opt.param_groups:
                g["lr"] = base_lr * 0.5 * (1 + math.cos(math.pi * frac))
            z0, z1 = head(bb.module(views[0])), head(bb.module(views[1]))
            loss = crit(z0, z1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        else:
            epochs += 1
    elapsed = time.monotonic() - start
    enc = Encoder(EncoderConfig(backbone=backbone, input_size=images.shape[1], train_size=32))
    enc.backbone.load_state_dict(bb.module.state_dict())
    return {"backbone": backbone, "train_size": 32, "epochs": epochs, "steps": steps,
            "images_per_s": round(steps * batch / elapsed, 1), "features": embed(enc, images)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--limit", type=int, default=5000)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--configs", default="random,auto,simclr@resnet18,lightly")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--concat-patches", action="store_true",
                    help="also fit the patch dictionary and score each config's features concatenated with it")
    ap.add_argument("--fit-patches", type=int, default=None,
                    help="random patches that dictionary is fitted on (default: the app's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.limit)
    if data is None:
        sys.exit(f"dataset {args.dataset} not found under {datasets_root()}; nothing to measure")
    images, labels, _ = data
    print(f"load average at the start: {os.getloadavg()}", flush=True)
    patch_features = None
    if args.concat_patches:
        from sslapp.models.patches import FIT_PATCHES, fit_patch_codes

        t0 = time.monotonic()
        from sslapp.models.normalise import imagenet_normalise

        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255)
        x = imagenet_normalise(x)
        _, patch_features = fit_patch_codes(x, fit_patches=args.fit_patches or FIT_PATCHES)
        print(json.dumps({"config": "patches", "knn_acc": round(knn(patch_features, labels), 4),
                          "wall_s": round(time.monotonic() - t0, 1)}), flush=True)
    tmp = tempfile.mkdtemp(prefix="bench-quality-")
    rows = []
    for i, config in enumerate(args.configs.split(",")):
        t0 = time.monotonic()
        if config == "random":
            res = run_random(images)
        elif config.startswith("lightly"):
            res = run_lightly(images, config, args.minutes, args.seed)
        else:
            root = os.path.join(tmp, f"ws{i}")
            workspace_from_arrays(root, images)
            res = run_sslapp(root, images, config, args.minutes, args.seed)
        features = res.pop("features")
        acc = knn(features, labels)
        row = {"config": config, "dataset": f"{args.dataset}-{len(images)}", "minutes": args.minutes,
               "threads": torch.get_num_threads(), "knn_acc": round(acc, 4), **res,
               "wall_s": round(time.monotonic() - t0, 1), "load_avg": round(os.getloadavg()[0], 2)}
        if patch_features is not None:  # the "concatenate normalised SSL and patch features"
            both = torch.cat([torch.nn.functional.normalize(features.float(), dim=1),
                              torch.nn.functional.normalize(patch_features, dim=1)], dim=1)
            row["knn_acc_concat_patches"] = round(knn(both, labels), 4)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(f"\n{'config':<22}{'backbone':<14}{'size':>5}{'epochs':>7}{'img/s':>8}{'kNN':>8}")
    for r in rows:
        print(f"{r['config']:<22}{r['backbone']:<14}{r['train_size']:>5}{r['epochs']:>7}"
              f"{r['images_per_s'] or 0:>8}{r['knn_acc']:>8.3f}")


if __name__ == "__main__":
    main()
