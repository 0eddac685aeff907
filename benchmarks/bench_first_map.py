"""Time from "upload finished" to "first map saved" for N images (or a table of texts) with a warm worker.

    .venv/bin/python benchmarks/bench_first_map.py [--n 5000] [--dataset cifar10] [--cache-size 64]
        [--starts imagenet,patches,pixels] [--quiet-s 3]
    .venv/bin/python benchmarks/bench_first_map.py --table ../shared/datasets/banking77/train.csv \
        --text-column text [--n 10000]

With --table, the first N rows of a CSV of texts are ingested by sslapp's own ingest (its time is
printed: it is part of the upload) and the first map is the TF-IDF one, then MiniLM's.

The images (a real dataset) are written into a fresh workspace's cache as ingestion leaves them.
A real worker process is started (`sslapp worker`, which compiles UMAP at start); once it is idle
the clock starts, an "embed" job is queued exactly as the Explore page does, and two times are
taken: when the first map artifact exists (a map of the pixels, seconds after the upload) and when
the job is done (the map of the embedding the app chooses, which replaces it). The peers' figures
come from the issue (same machine class, measured there with precomputed PCA vectors); they are
not re-run here because the peers are not installed.
SSLAPP_WORKER_WARM_UP=0 starts the worker without its UMAP compile, as the app's launcher does in
tests: only for smoke runs under 15 images, whose map is a PCA (the smoke tests use it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PEERS = {"LightlyStudio (issue 4, folder to map)": 11.8, "FiftyOne (issue 4, folder to map)": 43.6}


def fill_workspace(ws, images: np.ndarray) -> None:
    from PIL import Image

    from sslapp.ingest.cache import CacheWriter

    size = ws.cache_size
    rows = np.stack([np.asarray(Image.fromarray(im.squeeze() if im.shape[-1] == 1 else im)
                                .convert("RGB").resize((size, size), Image.Resampling.BICUBIC)) for im in images])
    with CacheWriter(ws) as cw:
        idx = cw.append(rows)
        cw.sync()
        ws.store.add_items([{"source": f"img-{i:06d}.png", "sha256": hashlib.sha256(r.tobytes() + bytes(i)).hexdigest(),
                             "width": size, "height": size, "cache_index": c} for i, (r, c) in enumerate(zip(rows, idx, strict=True))])


def ingest_table(ws, table: Path, n: int, text_column: str | None, tmp: Path) -> float:
    """The first `n` data rows of a CSV, ingested as the app does; returns the seconds it took."""
    import csv

    from sslapp.ingest.ingest import ingest

    with open(table, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    part = tmp / table.name
    with open(part, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows[: n + 1])
    started = time.monotonic()
    ingest(ws, [str(part)], options={"text_column": text_column} if text_column else None)
    return time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, quiet_s: float = 3.0, timeout: float = 900.0) -> float:
    """Seconds until the worker has used < 5% CPU for `quiet_s` (its UMAP warm-up is done)."""
    start = time.monotonic()
    last, since = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - start < timeout:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last > 0.05 * 0.5:
            since = time.monotonic()
        last = now
        if time.monotonic() - since >= quiet_s:
            return time.monotonic() - start - quiet_s
    raise TimeoutError("the worker did not go idle")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--cache-size", type=int, default=64)
    ap.add_argument("--starts", default=None, help="starting encoders the embed job makes, comma-separated "
                    "(images: imagenet, patches, pixels; texts: minilm, tfidf; default: the app's)")
    ap.add_argument("--table", type=Path, default=None, help="a CSV of texts instead of a dataset of images")
    ap.add_argument("--text-column", default=None, help="the table's column of texts (default: detected)")
    ap.add_argument("--quiet-s", type=float, default=3.0,
                    help="seconds of an idle worker that count as its warm-up being done")
    args = ap.parse_args()
    from benchmarks.data import datasets_root
    from sslapp.maps.read import load_map
    from sslapp.workspace import open_workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench-first-map-"))
    ws = open_workspace(tmp / "ws", cache_size=args.cache_size)
    if args.table is not None:
        ingest_s = ingest_table(ws, args.table, args.n, args.text_column, tmp)
        pile = f"{args.table.name}, ingest {ingest_s:.1f} s"
    else:
        data = datasets_root() / args.dataset / "images.npy"
        if data.exists():
            images = np.load(data)[: args.n]
        else:  # no dataset here: random images still measure the speed
            images = np.random.default_rng(0).integers(0, 255, (args.n, 32, 32, 3), dtype=np.uint8)
        fill_workspace(ws, images)
        pile = f"{args.dataset}, cache {args.cache_size} px"
    from sslapp.modalities import workspace_modality

    noun = workspace_modality(ws).plural
    if args.starts:
        ws.store.set_setting("features.starts", args.starts.split(","))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    command = [sys.executable, "-m", "sslapp", "worker", str(ws.root)]
    if os.environ.get("SSLAPP_WORKER_WARM_UP", "1") == "0":  # as the app's launcher: no UMAP compile (tests)
        command.append("--no-warm-up")
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        warm = wait_idle(worker.pid, args.quiet_s)
        cpu0 = cpu_seconds(worker.pid)
        t0 = time.monotonic()
        job_id = ws.store.enqueue_job("embed", {"clusters": "kmeans", "k": None, "provisional": False})
        first = None  # the first map saved (the pixel map, while the chosen embedding's is computed)
        while ws.store.job_status(job_id) not in ("done", "failed") and time.monotonic() - t0 < 600:
            if first is None and ws.store.latest_artifact("map") is not None:
                first = time.monotonic() - t0
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(worker.pid) - cpu0
        job = ws.store.job(job_id)
        assert job["status"] == "done", job["error"]
        m = load_map(ws)
        r = job["result"]
        print(f"{noun}: {len(m.item_ids)} ({pile}), load {os.getloadavg()[0]:.1f}")
        print(f"worker warm-up (UMAP compile, before the upload ends): {warm:.1f} s")
        if first is not None:
            print(f"sslapp: first ({'pixel' if noun == 'images' else 'quick'}) map saved {first:.1f} s after the upload")
        # the job's result is its last map's summary: `seconds` since the job started, of which `map_s`
        # laid out and clustered that map; the rest is the features (and the pixel map before it)
        print(f"sslapp: chosen embedding's map {elapsed:.1f} s after the upload (features {r['seconds'] - r['map_s']:.2f} s, "
              f"{r['layout']} map + clusters {r['map_s']} s, {r['k']} clusters, {r['embedding_name']})")
        print(f"sslapp: worker CPU time for that job {cpu:.1f} s (about its wall time on an otherwise idle core)")
        for name, s in PEERS.items():
            print(f"{name}: {s} s (reference from the issue, not re-run here)")
    finally:
        worker.terminate()
        worker.wait(10)


if __name__ == "__main__":
    main()
