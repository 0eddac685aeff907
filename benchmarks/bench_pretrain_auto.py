"""What `auto` picks on a CPU, from measurement: forward+backward img/s of candidate backbones.

Candidates are timed interleaved (round-robin, median of rounds) so load from other processes on
a shared machine falls on all of them alike. Quality per image seen is the same order for these
ResNet-18 variants at these sizes, so at a fixed time budget the fastest one sees the most images.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pretrain_auto.py --threads 1
        [--candidates resnet18-std@32,vit-tiny@32]   # a subset (the first is the reference)
"""

from __future__ import annotations

import argparse
import json
import time

import torch

CANDIDATES = [("resnet18-std", 32), ("resnet18", 16), ("resnet18", 32), ("resnet18-std", 64), ("vit-tiny", 32)]


def main() -> None:
    from sslapp.models.backbones import build_backbone

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--candidates", default=",".join(f"{b}@{s}" for b, s in CANDIDATES),
                    help="backbone@train_size, comma-separated; the first is the reference")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    candidates = [(b, int(s)) for b, s in (c.split("@") for c in args.candidates.split(","))]
    models = {c: build_backbone(*c).module for c in candidates}
    times: dict = {c: [] for c in candidates}
    for c, m in models.items():  # warm-up
        m(torch.randn(2, 3, c[1], c[1])).sum().backward()
    for _ in range(args.rounds):
        for c, m in models.items():
            x = torch.randn(args.batch, 3, c[1], c[1])
            t = time.perf_counter()
            m(x).sum().backward()
            times[c].append(args.batch / (time.perf_counter() - t))
    ref = candidates[0]
    base = sorted(times[ref])[len(times[ref]) // 2]
    for c in candidates:
        ips = sorted(times[c])[len(times[c]) // 2]
        print(json.dumps({"backbone": c[0], "train_size": c[1], "threads": args.threads,
                          "fwd_bwd_img_per_s": round(ips, 1),
                          f"relative_to_{ref[0].replace('-', '_')}_{ref[1]}": round(ips / base, 2)}))


if __name__ == "__main__":
    main()
