"""A 100,000-image folder from the shared cifar10 (issue 23 item 3): each source photo 20 times,
flipped, cropped and colour-changed, labelled by its source's class.

The variants are seeded and all different from each other (ingest would merge exact copies), so the
set has the size and the look of a real pile, and its truth is known.

    python benchmarks/make_100k.py OUT_DIR [--count 100000] [--seed 0]
        -> OUT_DIR/images/000/000000.png ..., OUT_DIR/truth.csv (path,class,source index)
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.data import datasets_root  # noqa: E402

PER_FOLDER = 1000  # one folder per thousand files, as cameras and exports do


def variant(src: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One random flip, crop (24-32 px, scaled back) and colour change of a 32x32 RGB photo."""
    img = Image.fromarray(src)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    side = int(rng.integers(24, 33))
    x0, y0 = (int(v) for v in rng.integers(0, 32 - side + 1, size=2))
    img = img.crop((x0, y0, x0 + side, y0 + side)).resize((32, 32), Image.Resampling.BILINEAR)
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhance(img).enhance(float(rng.uniform(0.7, 1.3)))
    return img


def make_100k(out: Path, count: int = 100_000, seed: int = 0, root: Path | None = None) -> Path:
    """Write `count` variants under out/images and out/truth.csv; returns the truth file."""
    src = (root or datasets_root()) / "cifar10"
    images = np.load(src / "images.npy")
    labels = np.load(src / "labels.npy")
    classes = [c.strip() for c in (src / "classes.txt").read_text().splitlines() if c.strip()]
    rng = np.random.default_rng(seed)
    seen: set[bytes] = set()
    truth = out / "truth.csv"
    out.mkdir(parents=True, exist_ok=True)
    with open(truth, "w", newline="") as f:
        writer = csv.writer(f)
        n = 0
        while n < count:
            i = n % len(images)
            img = variant(images[i], rng)
            key = img.tobytes()
            if key in seen:  # the same crop, flip and colours twice: draw again
                continue
            seen.add(key)
            rel = f"images/{n // PER_FOLDER:03d}/{n:06d}.png"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            img.save(out / rel)
            writer.writerow([rel, classes[int(labels[i])], i])
            n += 1
    return truth


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    truth = make_100k(args.out, args.count, args.seed)
    print(f"{args.count} images and {truth} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
