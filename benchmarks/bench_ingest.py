"""Ingest throughput (images/s) beside a naive reference measured in the same run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ingest.py [--n 2000] [--dataset cifar10|mnist]

Writes N images of the shared dataset as PNG files in a temporary folder, then times:
- reference: a plain serial loop over the same files doing only PIL open + RGB + BICUBIC resize to
  the cache size (no hashing, no thumbnails, no originals, no database): the per-image ceiling of a
  naive loop;
- sslapp: `ingest()` into a fresh workspace (SHA-256 dedupe, canonical decode, cache row, 96 px
  JPEG thumbnail, original copy, one DB transaction), with 1 decode process and with the default.
Goal (issue 2): at least 500 img/s for 28-64 px images on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.data import datasets_root  # noqa: E402
from sslapp.ingest.ingest import default_workers, ingest  # noqa: E402
from sslapp.workspace import open_workspace  # noqa: E402


def _images(name: str, n: int) -> np.ndarray:
    path = datasets_root() / name / "images.npy"
    if path.exists():
        images = np.load(path, mmap_mode="r")[:n]
        return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else np.asarray(images)
    print(f"({path} not found: using synthetic noise images)")
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _cpu() -> float:
    """CPU seconds used by this process and its finished children (the decode pool)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def reference(files: list[Path], size: int) -> tuple[float, float]:
    """(img/s wall clock, CPU ms per image)."""
    start, cpu = time.perf_counter(), _cpu()
    for f in files:
        with Image.open(f) as im:
            np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
    return len(files) / (time.perf_counter() - start), (_cpu() - cpu) * 1000 / len(files)


def ours(folder: Path, root: Path, workers: int) -> tuple[float, float, dict]:
    ws = open_workspace(root / f"ws-{workers}")
    start, cpu = time.perf_counter(), _cpu()
    report = ingest(ws, [folder], labels_from_dirs=True, workers=workers)
    rate = report["added"] / (time.perf_counter() - start)
    return rate, (_cpu() - cpu) * 1000 / report["added"], report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--size", type=int, default=64, help="cache size S")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "images"
        images = _images(args.dataset, args.n)
        files = []
        for i, img in enumerate(images):
            path = folder / f"c{i % 10}" / f"{i:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path)
            files.append(path)
        h, w = images.shape[1:3]
        print(f"{len(files)} {args.dataset} PNGs ({w}x{h}), cache {args.size} px, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f} (other jobs share these cores)")
        ref, ref_cpu = reference(files, args.size)
        one, one_cpu, _ = ours(folder, root, 1)
        many, many_cpu, report = ours(folder, root, default_workers())
        assert report["added"] == len(files) and not report["skipped"], report["skipped"][:3]
        print("                                                  wall clock    CPU per image")
        print(f"reference  naive serial PIL decode+resize only : {ref:8.0f} img/s  {ref_cpu:6.2f} ms")
        print(f"sslapp     ingest, 1 decode process            : {one:8.0f} img/s  {one_cpu:6.2f} ms")
        print(f"sslapp     ingest, {default_workers()} decode processes          : {many:8.0f} img/s  "
              f"{many_cpu:6.2f} ms   (goal >= 500 img/s)")
        print(f"CPU-bound ceiling of sslapp on {os.cpu_count()} free cores: "
              f"{1000 * (os.cpu_count() or 1) / many_cpu:.0f} img/s (cores / CPU time per image; the wall clock "
              "above is lower while other jobs share the cores)")


if __name__ == "__main__":
    main()
