"""Turn /work/shared/datasets/<name> (images.npy, labels.npy, classes.txt) into a PNG folder + truth CSV.

The label-efficiency benchmark takes what a user would have: a folder of images and, for the
simulated user only, a CSV of (relative image path, class name). Class names never appear in the
paths, so nothing leaks into ingest.

    python benchmarks/make_image_folders.py mnist OUT_DIR [--limit 2000] [--seed 0]
        -> OUT_DIR/images/00000.png ..., OUT_DIR/truth.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.data import datasets_root  # noqa: E402

DATASETS = datasets_root()


def make_image_folder(name: str, out: Path, limit: int | None = None, seed: int = 0,
                      root: Path = DATASETS) -> tuple[Path, Path]:
    """Write images/ and truth.csv under `out`; `limit` keeps a seeded, class-stratified subset."""
    src = root / name
    images = np.load(src / "images.npy", mmap_mode="r")
    labels = np.load(src / "labels.npy")
    classes = (src / "classes.txt").read_text().split("\n")
    classes = [c.strip() for c in classes if c.strip()]
    keep = np.arange(len(labels))
    if limit is not None and limit < len(labels):
        rng = np.random.default_rng(seed)
        per = {c: rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}
        share = {c: int(round(limit * len(v) / len(labels))) for c, v in per.items()}
        keep = np.sort(np.concatenate([v[:max(1, share[c])] for c, v in per.items()]))
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    truth = out / "truth.csv"
    with open(truth, "w", newline="") as f:
        writer = csv.writer(f)
        for n, i in enumerate(keep):
            a = np.asarray(images[i])
            if a.shape[-1] == 1:
                a = a[..., 0]
            rel = f"images/{n:05d}.png"
            Image.fromarray(a).save(out / rel)
            writer.writerow([rel, classes[int(labels[i])]])
    return img_dir.parent, truth


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="dataset folder under /work/shared/datasets (mnist, cifar10, pneumoniamnist)")
    p.add_argument("out", type=Path)
    p.add_argument("--limit", type=int, default=None, help="keep a seeded class-stratified subset of this size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", type=Path, default=DATASETS)
    args = p.parse_args(argv)
    if not (args.root / args.name / "images.npy").exists():
        print(f"no dataset at {args.root / args.name}", file=sys.stderr)
        return 2
    folder, truth = make_image_folder(args.name, args.out, args.limit, args.seed, args.root)
    print(f"{folder} {truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
