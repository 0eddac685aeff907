"""Write sample_data/: 30 CIFAR-10 test images per class as PNGs in class folders (seeded).

Run: .venv/bin/python benchmarks/make_sample_data.py [--datasets /work/shared/datasets] [--out sample_data]
The images come from the shared CIFAR-10 snapshot (see sample_data/README.md for license and
attribution). Deterministic: the same snapshot gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.data import datasets_root  # noqa: E402

PER_CLASS = 30
SEED = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=str(datasets_root()))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "sample_data"))
    parser.add_argument("--per-class", type=int, default=PER_CLASS)
    args = parser.parse_args()
    src = Path(args.datasets) / "cifar10"
    images = np.load(src / "images.npy", mmap_mode="r")
    labels = np.load(src / "labels.npy")
    classes = (src / "classes.txt").read_text().split()
    rng = np.random.default_rng(SEED)
    out = Path(args.out)
    total = 0
    for c, name in enumerate(classes):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        picks = np.sort(rng.choice(np.flatnonzero(labels == c), size=args.per_class, replace=False))
        for i in picks:
            Image.fromarray(np.asarray(images[i])).save(folder / f"cifar10-test-{int(i):04d}.png", optimize=True)
            total += 1
    size = sum(p.stat().st_size for p in out.rglob("*.png"))
    print(f"wrote {total} images in {len(classes)} class folders to {out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
