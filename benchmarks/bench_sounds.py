"""Sounds on fsdd (spoken digits, 4 speakers): what carries to a new voice, through the real CLI.

For each held-out speaker: ingest the other three speakers' 1,500 clips into a new workspace (clips
ingested per second), optionally pretrain (`--method`, `--minutes`; clips per second), embed (the app
chooses its embedding by measurement), label 5 clips per digit picked at random from the three voices,
train the app's classifier (`sslapp finetune`), export it, and classify the held-out speaker's 500 clips
with `sslapp predict` on the exported model: the accuracy on a voice the app never heard.

    flock /tmp/sslapp-heavy.lock .venv/bin/python benchmarks/bench_sounds.py [--speakers george,...]
        [--per-digit 5] [--method byol-a --minutes 10] [--seed 0] [--data ../shared/datasets/fsdd/recordings]
        [--starts mfcc,imagenet,patches]

Prints one JSON object: load_before/load_after, and per held-out speaker: ingest (clips, seconds,
clips_per_s), pretrain (method, epochs, clips_per_s), the embedding the app chose and why, the estimate
the app showed, and heldout_accuracy.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "fsdd" / "recordings"
NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def _sslapp(*args: str) -> str:
    """`sslapp ARGS` in this process (its jobs run in the foreground as the CLI runs them); what it printed."""
    from sslapp.cli import main as cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(list(args))
    if code != 0:
        raise SystemExit(f"sslapp {' '.join(args)} failed:\n{err.getvalue()[-3000:]}")
    return out.getvalue() + err.getvalue()


def _link_folder(files: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for f in files:
        (folder / f.name).symlink_to(f.resolve())
    return folder


def held_out_run(data: Path, speaker: str, per_digit: int, method: str | None, minutes: float, seed: int,
                 tmp: Path, starts: list[str] | None = None) -> dict:
    clips = sorted(p for p in data.iterdir() if NAME.match(p.name))
    digit = {p.name: NAME.match(p.name).group(1) for p in clips}
    train = [p for p in clips if NAME.match(p.name).group(2) != speaker]
    test = [p for p in clips if NAME.match(p.name).group(2) == speaker]
    if not test:
        raise SystemExit(f"no clips of speaker {speaker!r} in {data}")
    ws, out_dir = tmp / f"ws-{speaker}", tmp / f"export-{speaker}"
    heard, unheard = _link_folder(train, tmp / f"heard-{speaker}"), _link_folder(test, tmp / f"new-{speaker}")
    result: dict = {"speaker": speaker, "train_clips": len(train), "test_clips": len(test)}
    report = json.loads(_sslapp("ingest", str(ws), str(heard), "--json").splitlines()[-1])
    if starts:
        from sslapp.features.read import STARTS_SETTING
        from sslapp.workspace import open_workspace

        open_workspace(ws).store.set_setting(STARTS_SETTING, starts)
    result["ingest"] = {"clips": report["added"], "seconds": report["seconds"],
                        "clips_per_s": round(report["added"] / report["seconds"], 1)}
    if method and minutes > 0:
        said = _sslapp("pretrain", str(ws), "--method", method, "--minutes", str(minutes), "--json")
        run = json.loads(said[said.index("{"):said.rindex("}") + 1])
        result["pretrain"] = {"method": method, "minutes": minutes, "epochs": run.get("epochs"),
                              "clips_per_s": run.get("images_per_s"), "backbone": run.get("backbone")}
    rng = np.random.default_rng(seed)
    digits = sorted({digit[p.name] for p in train})
    picks = [p for d in digits for p in rng.choice([p for p in train if digit[p.name] == d], per_digit, replace=False)]
    labels = tmp / f"labels-{speaker}.csv"
    with open(labels, "w", newline="") as f:
        csv.writer(f).writerows([["path", "class"], *[[p.name, digit[p.name]] for p in picks]])
    _sslapp("label", str(ws), str(labels))
    said = _sslapp("finetune", str(ws), "--json")
    trained = json.loads(said[said.index("{"):said.rindex("}") + 1])
    result["estimate"] = (trained.get("estimate") or {}).get("text")
    _sslapp("export", str(ws), str(out_dir))
    pretraining = json.loads((out_dir / "model.json").read_text())["training_data"]["pretraining"]
    result["embedding"] = pretraining.get("start") or pretraining.get("method")
    said = _sslapp("predict", str(out_dir), str(unheard), "--json")
    predicted = json.loads(said[said.index("["):said.rindex("]") + 1])
    right = sum(p["class"] == digit[Path(p["path"].split(":")[0]).name] for p in predicted)
    result["heldout_accuracy"] = round(right / len(test), 4)
    result["predicted"] = len(predicted)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--speakers", default="george,jackson,lucas,nicolas")
    ap.add_argument("--per-digit", type=int, default=5)
    ap.add_argument("--method", default=None)
    ap.add_argument("--minutes", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--starts", default=None, help="the starting encoders, comma-separated (default: the app's)")
    args = ap.parse_args()
    out = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "load_before": os.getloadavg(),
           "per_digit": args.per_digit, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for speaker in args.speakers.split(","):
            started = time.monotonic()
            run = held_out_run(args.data, speaker, args.per_digit, args.method, args.minutes, args.seed,
                               Path(tmp), args.starts.split(",") if args.starts else None)
            run["seconds"] = round(time.monotonic() - started, 1)
            out["runs"].append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)
    accs = [r["heldout_accuracy"] for r in out["runs"]]
    out["heldout_mean"] = round(float(np.mean(accs)), 4)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
