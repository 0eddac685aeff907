"""View generation cost: sslapp's batched `make_views` beside kornia's augmentation modules and
lightly's per-image `SimCLRTransform`, on the same 256 images in one run.

All three produce SimCLR's two views (random resized crop, flip, colour jitter 0.4/0.4/0.2/0.1 at
p=0.8, grayscale p=0.2, normalise) at 32 px. Reports milliseconds of CPU time per batch of 256
images (CPU time, because wall time on a shared machine measures the neighbours).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_augment.py [--dataset cifar10] [--size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _images(dataset: str, n: int, size: int) -> np.ndarray:
    from benchmarks.data import load_dataset

    data = load_dataset(dataset, limit=n)
    if data is None or data[0].shape[1] != size:
        print(f"{dataset} not found at {size} px; using random images", file=sys.stderr)
        return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return data[0][:n]


def _cpu_ms(fn, reps: int) -> float:
    fn()
    start = time.process_time()
    for i in range(reps):
        fn(i)
    return (time.process_time() - start) / reps * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    import kornia.augmentation as K
    from lightly.transforms import SimCLRTransform
    from PIL import Image

    from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD
    from sslapp.ssl.augment import make_views
    from sslapp.ssl.methods.base import ViewSpec

    images = _images(args.dataset, args.batch, args.size)
    batch = torch.from_numpy(images)
    spec = ViewSpec(n_global=2, global_size=args.size, global_scale=(0.2, 1.0))
    ours = _cpu_ms(lambda i=0: make_views(batch, spec, seed=i), args.reps)

    kornia_view = torch.nn.Sequential(
        K.RandomResizedCrop((args.size, args.size), scale=(0.2, 1.0)), K.RandomHorizontalFlip(),
        K.ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8), K.RandomGrayscale(p=0.2),
        K.Normalize(mean=torch.tensor(IMAGENET_MEAN), std=torch.tensor(IMAGENET_STD)))

    def kornia_views(i=0):
        x = batch.permute(0, 3, 1, 2).float() / 255
        return [kornia_view(x), kornia_view(x)]

    kornia_ms = _cpu_ms(kornia_views, args.reps)

    transform = SimCLRTransform(input_size=args.size, min_scale=0.2, cj_strength=0.5, cj_sat=0.4,
                                gaussian_blur=0.0)  # jitter 0.4/0.4/0.2/0.1 as above
    pil = [Image.fromarray(im) for im in images]

    def lightly_views(i=0):
        views = [transform(im) for im in pil]
        return [torch.stack([v[0] for v in views]), torch.stack([v[1] for v in views])]

    lightly_ms = _cpu_ms(lightly_views, max(1, args.reps // 2))
    result = {"images": args.batch, "size": args.size, "sslapp_make_views_ms": round(ours, 1),
              "kornia_modules_ms": round(kornia_ms, 1), "lightly_simclr_transform_per_image_ms": round(lightly_ms, 1),
              "threads": torch.get_num_threads()}
    print(json.dumps(result))
    print(f"two SimCLR views of {args.batch} images at {args.size} px, CPU ms per batch: sslapp {ours:.1f} | "
          f"kornia modules {kornia_ms:.1f} ({kornia_ms / ours:.1f}x) | lightly per-image {lightly_ms:.1f} "
          f"({lightly_ms / ours:.1f}x)", file=sys.stderr)


if __name__ == "__main__":
    main()
