"""100,000 images on two cores, end to end (issue 23 item 3): every step a user takes, timed, with memory.

    .venv/bin/python benchmarks/make_100k.py /tmp/c100k            # the pile (39 s)
    .venv/bin/python benchmarks/bench_100k.py /tmp/c100k [--workspace DIR] [--json OUT]

Steps, in a user's order, each as the app runs it:
- ingest: `sslapp ingest WS FOLDER` (a CLI process; its peak memory from the kernel);
- a real worker (`sslapp worker`, its UMAP compile done before the clock starts, as the app starts it
  when the upload begins), then the jobs the pages queue: the embed job (the first, pixel map and then
  the chosen embedding's map), a suggestion round of 20, 20 labels written the way a key press writes
  one (each timed), the linear probe, label review, near-duplicates and the export;
- a cold `sslapp suggest --budget 20` (a fresh process, as a script would call it).
Memory: the worker's peak resident set (VmHWM, which counts the pages of the memory-mapped cache it read)
and its peak anonymous memory (RssAnon, sampled), and each CLI process's peak (ru_maxrss).
Pages' first paint in a browser is `benchmarks/bench_100k_pages.py`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_first_map import wait_idle  # noqa: E402

SSLAPP = [sys.executable, "-m", "sslapp"]


def run_cli(args: list[str]) -> tuple[float, float, str]:
    """(seconds, peak MB, stdout) of one sslapp CLI process; raises when it fails."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(SSLAPP + args, cwd=ROOT, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak (ru_maxrss, KB)
        seconds = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"sslapp {' '.join(args)} failed ({proc.returncode}): {err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read()


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb(pid: int) -> float:
    """The kernel's peak resident set (VmHWM): anonymous memory plus the pages of files it read, such as
    the memory-mapped image cache (1.2 GB at 100,000 images of 64 px), which the kernel can drop."""
    return status_mb(pid, "VmHWM")


class AnonPeak:
    """The peak of a process's anonymous memory (RssAnon: what it allocated, not file pages it read),
    sampled every 50 ms in a thread; the kernel keeps no peak of it."""

    def __init__(self, pid: int):
        import threading

        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, status_mb(self.pid, "RssAnon"))
            except OSError:
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_job(ws, kind: str, params: dict, timeout: float = 1800, poll: float = 0.02) -> tuple[float, dict]:
    """Queue a job as a page does and wait for it; (seconds, result)."""
    t0 = time.monotonic()
    job_id = ws.store.enqueue_job(kind, params)
    while ws.store.job_status(job_id) not in ("done", "failed", "cancelled"):
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{kind} did not finish in {timeout} s")
        time.sleep(poll)
    seconds = time.monotonic() - t0
    job = ws.store.job(job_id)
    if job["status"] != "done":
        raise RuntimeError(f"{kind} {job['status']}: {job['error']}")
    return seconds, job["result"] or {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pile", type=Path, help="a folder holding images/ and truth.csv (benchmarks/make_100k.py)")
    ap.add_argument("--workspace", type=Path, default=None, help="default: a fresh temporary folder")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here too")
    ap.add_argument("--skip", default="", help="comma-separated steps to leave out (e.g. export,cold_suggest)")
    ap.add_argument("--starts", default=None, help="starting encoders the embed job makes, comma-separated "
                    "(imagenet, patches, pixels; default: the app's)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    ws_root = args.workspace or Path(tempfile.mkdtemp(prefix="bench-100k-")) / "ws"
    figures: dict[str, object] = {"load_at_start": round(os.getloadavg()[0], 2),
                                  "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

    def say(step: str, seconds: float, **more) -> None:
        figures[step] = {"seconds": round(seconds, 2), **more}
        extra = ", ".join(f"{k} {v}" for k, v in more.items())
        print(f"{step}: {seconds:.1f} s{', ' + extra if extra else ''} (load {os.getloadavg()[0]:.2f})", flush=True)

    seconds, peak, out = run_cli(["ingest", str(ws_root), str(args.pile / "images"), "--json"])
    say("ingest", seconds, items=json.loads(out)["added"], peak_mb=round(peak))

    from sslapp.workspace import open_workspace

    ws = open_workspace(ws_root)
    if args.starts:
        ws.store.set_setting("features.starts", args.starts.split(","))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    command = SSLAPP + ["worker", str(ws_root)]
    if os.environ.get("SSLAPP_WORKER_WARM_UP", "1") == "0":  # smoke runs: no UMAP compile (bench_first_map)
        command.append("--no-warm-up")
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        warm = wait_idle(worker.pid)
        print(f"worker warm-up (UMAP compile, while the upload runs): {warm:.1f} s", flush=True)
        anon = AnonPeak(worker.pid)
        t0 = time.monotonic()
        job_id = ws.store.enqueue_job("embed", {"clusters": "kmeans", "k": None, "provisional": False})
        first = None
        while ws.store.job_status(job_id) not in ("done", "failed"):
            if first is None and ws.store.latest_artifact("map") is not None:
                first = time.monotonic() - t0
                say("first_map", first, peak_mb=round(peak_mb(worker.pid)), anon_mb=round(anon.peak))
            time.sleep(0.05)
        job = ws.store.job(job_id)
        if job["status"] != "done":
            raise RuntimeError(f"embed failed: {job['error']}")
        r = job["result"]
        say("chosen_map", time.monotonic() - t0, embedding=r["embedding_name"], map_s=r["map_s"],
            peak_mb=round(peak_mb(worker.pid)), anon_mb=round(anon.peak))

        seconds, result = run_job(ws, "suggest", {"budget": 20, "strategy": "auto"})
        say("suggest_round", seconds, count=result.get("count"), peak_mb=round(peak_mb(worker.pid)),
            anon_mb=round(anon.peak))

        truth = {}
        with open(args.pile / "truth.csv", newline="") as f:
            for row in csv.reader(f):
                truth[row[0]] = row[1]
        images = (args.pile / "images").resolve()
        writes = []
        for s in result["suggestions"]:  # the simulated user labels each suggestion with a key
            source = Path(ws.store.item(int(s["item_id"]))["source"])
            name = truth[f"images/{source.relative_to(images).as_posix()}"]
            t = time.perf_counter()
            ws.store.set_labels([int(s["item_id"])], ws.store.class_id(name, create=True))
            writes.append(time.perf_counter() - t)
        writes.sort()
        say("label_write", sum(writes), labels=len(writes), p50_ms=round(1000 * writes[len(writes) // 2], 1),
            max_ms=round(1000 * writes[-1], 1))

        for step, kind, params in [("linear_probe", "finetune", {"mode": "linear", "propagate": "auto"}),
                                   ("review", "review", {}), ("near_duplicates", "near_duplicates", {}),
                                   ("export", "export", {})]:
            if step in skip:
                continue
            seconds, result = run_job(ws, kind, params)
            say(step, seconds, peak_mb=round(peak_mb(worker.pid)), anon_mb=round(anon.peak))
        figures["worker_peak_mb"] = round(peak_mb(worker.pid))
        figures["worker_peak_anon_mb"] = round(anon.stop())
    finally:
        worker.terminate()
        worker.wait(30)
    if "cold_suggest" not in skip:
        seconds, peak, _ = run_cli(["suggest", str(ws_root), "--budget", "20", "--json"])
        say("cold_suggest", seconds, peak_mb=round(peak))
    print(f"worker peak {figures.get('worker_peak_mb')} MB resident, {figures.get('worker_peak_anon_mb')} MB "
          f"anonymous; workspace {ws_root}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
