"""Every benchmark script runs, on tiny inputs, as `python SCRIPT ARGS` would: none rots when the package moves.

Each script gets a few generated images (or a tiny dataset folder: `SSLAPP_DATASETS` points
`benchmarks/data.py` at it) and the smallest budget its options allow, so a run takes seconds and
needs no shared data. The figures are meaningless at this size; what is checked is that the
script exits 0 and prints what its docstring promises. A script added to `benchmarks/` without an
entry in SMOKES fails `test_every_benchmark_script_has_a_smoke_run`.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
HELPERS = {"__init__.py", "data.py"}  # imported by the scripts; no command line of their own
SETS = {"cifar10": ((32, 32, 3), 10, 60), "mnist": ((28, 28, 1), 10, 60), "pneumoniamnist": ((28, 28, 1), 2, 30)}


@dataclass(frozen=True)
class Smoke:
    """One run of a script: its arguments (given the run's folder), then what its output must show."""

    argv: Callable[[Path], list[str]]
    expect: tuple[str, ...] = ()  # regular expressions the output (stdout + stderr) must match
    json_keys: tuple[str, ...] = ()  # keys of the first JSON object printed on stdout
    files: tuple[str, ...] = ()  # files the run must leave in its folder
    prepare: Callable[[Path], None] | None = None


def _datasets(root: Path) -> None:
    """Tiny stand-ins for the shared sets, in their layout (images.npy, labels.npy, classes.txt):
    a class-dependent brightness on noise, so classes differ a little."""
    rng = np.random.default_rng(0)
    for name, (shape, classes, n) in SETS.items():
        folder = root / name
        folder.mkdir(parents=True)
        labels = np.arange(n) % classes
        images = rng.integers(0, 90, (n, *shape)) + (labels * (150 // classes))[:, None, None, None]
        np.save(folder / "images.npy", images.astype(np.uint8))
        np.save(folder / "labels.npy", labels.astype(np.int64))
        (folder / "classes.txt").write_text("".join(f"class{c}\n" for c in range(classes)))


def _fsdd(tmp: Path) -> None:
    """A tiny fsdd in its layout ({digit}_{speaker}_{n}.wav): 3 'digits' (tests/sound_clips.py's calls) said
    by two speakers, 2 clips each."""
    import soundfile as sf

    sys.path.insert(0, str(ROOT / "tests"))
    from sound_clips import KINDS, clip

    (tmp / "fsdd").mkdir()
    for d, kind in enumerate(KINDS):
        for s, speaker in enumerate("ab"):
            for n in range(2):
                sf.write(tmp / "fsdd" / f"{d}_{speaker}_{n}.wav", clip(kind, 10 * s + n), 16000, subtype="PCM_16")


def _workspace_and_truth(tmp: Path) -> None:
    """What `sslapp bench label-efficiency --workspace` keeps: a workspace, and the truth per source."""
    from sslapp.bench.data import synthetic_images, workspace_from_arrays

    images, labels = synthetic_images(40, 16, classes=4)
    ws = workspace_from_arrays(tmp / "ws", images)
    with open(tmp / "truth.csv", "w", newline="") as f:
        csv.writer(f).writerows((item["source"], f"kind{labels[k]}") for k, item in enumerate(ws.store.items()))


def _label_efficiency_json(tmp: Path) -> None:
    """The shape `sslapp bench label-efficiency --json` writes (see sslapp/bench/label_efficiency.py)."""
    rows = [{"embedding": "app", "strategy": s, "budget": b, "labels": b, "accuracy": a, "accuracy_std": 0.01}
            for s, base in (("auto", 0.5), ("random", 0.4)) for b, a in ((10, base), (50, base + 0.2))]
    baselines = [{"name": "raw-pixels-random", "budget": b, "accuracy": 0.3} for b in (10, 50)]
    (tmp / "tiny.json").write_text(json.dumps({"results": rows, "baselines": baselines,
                                               "pretrain": {"method": "none", "seconds": 0.0}}))


def _texts_csv(tmp: Path) -> None:
    """A few texts of three intents in banking77's columns (text, category)."""
    texts = {"card": ["my card has not arrived", "where is my new card", "the card still did not come",
                      "how long until my card arrives"],
             "pin": ["I forgot my PIN", "how do I change my PIN", "my PIN is blocked", "reset the PIN please"],
             "rate": ["what is the exchange rate", "why was the rate so bad", "which rate do you use",
                      "the exchange rate looks wrong"]}
    with open(tmp / "texts.csv", "w", newline="") as f:
        csv.writer(f).writerows([("text", "category"), *((t, c) for c, ts in texts.items() for t in ts)])


def _pile(tmp: Path, count: int) -> None:
    """A pile in make_100k.py's layout (images/NNN/NNNNNN.png, truth.csv of path, class, source) for
    bench_100k.py: `count` noisy images of three brightness classes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for n in range(count):
        rel = f"images/{n // 1000:03d}/{n:06d}.png"
        (tmp / "pile" / rel).parent.mkdir(parents=True, exist_ok=True)
        level = 40 + 80 * (n % 3)
        Image.fromarray(np.clip(level + rng.integers(-30, 30, (32, 32, 3)), 0, 255).astype(np.uint8)).save(tmp / "pile" / rel)
        rows.append((rel, f"class{n % 3}", n))
    with open(tmp / "pile" / "truth.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)


SMOKES: dict[str, Smoke] = {
    "auto_switch.py": Smoke(
        lambda t: [str(t / "ws"), str(t / "truth.csv"), "--switches", "0,inf", "--checkpoints", "4,8", "--round", "4",
                   "--random", "--provisional", "--json", str(t / "table.json")],
        expect=(r"40 images, 4 classes", r"auto T=inf ", r"random ", r"labels\s+4\s+8"),
        files=("table.json",), prepare=_workspace_and_truth),
    "bench_100k.py": Smoke(  # the pile make_100k.py writes, 40 images instead of 100,000
        lambda t: [str(t / "pile"), "--workspace", str(t / "ws"), "--json", str(t / "figures.json"),
                   "--starts", "pixels", "--skip", "cold_suggest"],  # a new process is what ingest's step times
        expect=(r"ingest: [\d.]+ s, items 40", r"first_map: ", r"chosen_map: .*embedding pixels",
                r"suggest_round: .*count 20", r"label_write: .*labels 20", r"linear_probe: ", r"review: ",
                r"near_duplicates: ", r"export: ", r"worker peak \d+ MB resident, \d+ MB anonymous"),
        files=("figures.json",), prepare=lambda t: _pile(t, 40)),
    "bench_100k_pages.py": Smoke(  # chromium on a 100,000-image workspace: here only its command line and imports
        lambda t: ["--help"], expect=(r"usage: \S*bench_100k_pages\.py", r"--labels LABELS")),
    "bench_augment.py": Smoke(
        lambda t: ["--batch", "8", "--reps", "1"],
        json_keys=("sslapp_make_views_ms", "kornia_modules_ms", "lightly_simclr_transform_per_image_ms")),
    "bench_choice_unsupervised.py": Smoke(
        lambda t: ["--sets", "cifar10", "--n", "60", "--starts", "pixels"],
        expect=(r"cifar10 \(n=60\)", r"pixels \(PCA\) +poisson@1/class=\d", r"eigengap=", r"modularity=",
                r"silhouette=")),
    "bench_clusters.py": Smoke(
        lambda t: ["--sets", "mnist", "--n", "14", "--starts", "pixels"],  # under 15 images: a PCA map, no UMAP
        expect=(r"mnist n=14 classes=\d+ embedding=", r"silhouette-map k<=20 +k=", r"hdbscan-map min=5 +k=",
                r"NMI=\d\.\d{3}  ARI=")),
    "bench_curate.py:similar-latency": Smoke(
        lambda t: ["similar-latency", "--n", "300", "--dim", "16", "--queries", "5", "--real-n", "40",
                   "--embedding", "pixels"],
        expect=(r'"neighbour_sets_equal_to_sklearn": 1\.0',),
        json_keys=("bench", "query_ms", "sklearn_brute_cosine_query_ms", "real_embedding")),
    "bench_curate.py:near-duplicates": Smoke(
        lambda t: ["near-duplicates", "--n", "30", "--copies", "3", "--cache-size", "32", "--diagnose",
                   "--embedding", "pixels"],
        json_keys=("recall", "planted_pairs", "groups", "diagnose"), expect=(r'"planted_pairs": 3',)),
    "bench_export.py": Smoke(
        lambda t: ["--n", "30", "--per-class", "2"],
        expect=(r"data: 30 cifar10 images as PNG, 20 labels", r"faithfulness: app vs ONNX predict max \|dp\| = ",
                r"onnxruntime \d+ img/s", r"sslapp predict end to end")),
    "bench_first_map.py": Smoke(
        lambda t: ["--n", "12", "--cache-size", "32", "--starts", "pixels", "--quiet-s", "0.5"],
        expect=(r"images: 12 \(cifar10", r"first \(pixel\) map saved", r"chosen embedding's map [\d.]+ s .*clusters")),
    "bench_first_map.py:texts": Smoke(
        lambda t: ["--table", str(t / "texts.csv"), "--text-column", "text", "--n", "12", "--quiet-s", "0.5",
                   "--starts", "tfidf"],  # the weightless start: the worker never loads torch (MiniLM: test_text_*)
        expect=(r"texts: 12 \(texts.csv, ingest [\d.]+ s\)", r"first \(quick\) map saved",
                r"chosen embedding's map [\d.]+ s .*TF-IDF"), prepare=_texts_csv),
    "bench_ingest.py": Smoke(
        lambda t: ["--n", "20", "--size", "32"],
        expect=(r"20 cifar10 PNGs", r"sslapp +ingest, 1 decode process +: +\d+ img/s")),
    "bench_map_scale.py": Smoke(
        lambda t: ["--n", "1500"],
        expect=(r"figure \(cluster, 1500 points", r"Explore page rerun with 500 selected", r"colouring by label")),
    "bench_pretrain_auto.py": Smoke(
        lambda t: ["--candidates", "resnet18-std@16,vit-tiny@16", "--batch", "2", "--rounds", "1"],
        json_keys=("backbone", "fwd_bwd_img_per_s", "relative_to_resnet18_std_16")),
    "bench_pretrain_disk.py": Smoke(
        lambda t: ["--backbone", "resnet18-w16", "--epochs", "2"],
        json_keys=("load", "previous_policy", "now")),
    "bench_pretrain_quality.py": Smoke(
        lambda t: ["--limit", "40", "--minutes", "0.01", "--configs", "random,simclr@resnet18-std,lightly",
                   "--concat-patches", "--fit-patches", "2000"],
        expect=(r'"config": "patches"', r'"config": "simclr@resnet18-std"', r'"config": "lightly"',
                r"knn_acc_concat_patches", r"config\s+backbone\s+size")),
    "bench_pretrain_throughput.py": Smoke(
        lambda t: ["--limit", "16", "--batch", "8", "--backbones", "resnet18-std", "--steps", "1", "--rounds", "1",
                   "--workers", "0"],
        json_keys=("sslapp", "lightly_style", "ceiling", "sslapp_vs_ceiling")),
    "bench_review.py": Smoke(
        lambda t: ["--sets", "cifar10", "--labels", "60", "--seeds", "1", "--embeddings", "pixels"],
        expect=(r"cifar10 / pixels: 60 labels", r"ours \(auto, as the app runs it\) +P@20 ", r"cleanlab find_label_issues")),
    "bench_review.py:few": Smoke(  # the few-label scenarios, where the app's pick follows the image prior
        lambda t: ["--sets", "cifar10", "--few", "--labels", "60", "--seeds", "1", "--embeddings", "pixels"],
        expect=(r"cifar10, 5 a class \(50 labels, \d+ flipped\), 1 seeds; app's picks: pixels 1",
                r"cifar10, one big class", r"app's pick +now ")),
    "bench_sounds.py": Smoke(
        lambda t: ["--data", str(t / "fsdd"), "--speakers", "b", "--per-digit", "1", "--starts", "mfcc"],
        json_keys=("command", "load_before", "per_digit", "runs", "heldout_mean", "load_after"),
        expect=(r'"speaker": "b"', r'"clips_per_s": ', r'"heldout_accuracy": '), prepare=_fsdd),
    "bench_text_embed.py": Smoke(
        lambda t: ["--csv", str(t / "texts.csv"), "--n", "12", "--repeats", "1", "--onnx"],
        json_keys=("n", "load_before", "minilm", "tfidf", "knn10", "load_after"), expect=(r'"app": ', r'"onnxruntime": \{"texts_per_s"'),
        prepare=_texts_csv),
    "bench_text_ssl.py": Smoke(
        lambda t: ["--csv", str(t / "texts.csv"), "--methods", "word2vec:1", "--setfit", "1", "--seeds", "1",
                   "--threads", "1"],
        json_keys=("n", "classes", "threads", "load_before", "rows", "load_after"),
        expect=(r'"name": "minilm \(frozen\)"', r'"name": "word2vec", "epochs": 1', r'"name": "setfit", "r": 1'),
        prepare=_texts_csv),
    "bench_lite_backbones.py": Smoke(
        lambda t: ["lite0@32", "--limit", "60", "--seeds", "1"],  # lite1/lite2 are not sslapp's dependencies
        expect=(r"cifar10: 60 images", r"lite0@32: dim 1280, \d+ images/s, 20-NN [\d.]+, probe at 1 a class [\d.]+")),
    "features_probe.py": Smoke(
        lambda t: ["embed", "knn", "propagate", "coldstart", "graphspace", "--cache", str(t / "cache"),
                   "--fit-patches", "2000", "--per-class", "1,3", "--seeds", "1",
                   "--spaces", "features"],  # UMAP's numba compile alone takes 10 s
        expect=(r"cifar10 imagenet", r"mnist patches kNN \d", r"pneumoniamnist pixels 3 \{", r"typiclust on features",
                r"features/poisson")),
    "make_100k.py": Smoke(
        lambda t: [str(t / "out"), "--count", "30"],
        expect=(r"30 images and ",), files=("out/truth.csv", "out/images/000/000029.png")),
    "make_image_folders.py": Smoke(
        lambda t: ["cifar10", str(t / "out"), "--limit", "20"],
        files=("out/truth.csv", "out/images/00019.png")),
    "make_text_subset.py": Smoke(
        lambda t: [str(t / "texts.csv"), str(t / "two.csv"), "--classes", "2"],
        expect=(r"wrote 8 rows of 2 classes",), files=("two.csv",), prepare=_texts_csv),
    "make_sample_data.py": Smoke(
        lambda t: ["--out", str(t / "sample"), "--per-class", "2"],
        expect=(r"wrote 20 images in 10 class folders",)),
    "plot_label_efficiency.py": Smoke(
        lambda t: [str(t / "plot.png"), f"tiny={t / 'tiny.json'}"],
        expect=(r"\| auto picks, app classifier \| 0\.500 ± 0\.010 \| 0\.700",), files=("plot.png",),
        prepare=_label_efficiency_json),
    "propagation.py": Smoke(
        lambda t: ["--datasets", "mnist,pneumoniamnist", "--per-class", "1,3", "--seeds", "1", "--limit", "60"],
        json_keys=("dataset", "per_class", "propagate", "accuracy"), expect=(r"\| pneumoniamnist \| 6 \| ",)),
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    _datasets(root)
    return root


def _json_objects(stdout: str) -> list[dict]:
    try:
        return [json.loads(stdout)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def runs(datasets, tmp_path_factory) -> dict[str, dict]:
    """Every smoke run, one after another in one subprocess (tests/_bench_runner.py): each script runs as
    `python SCRIPT ARGS` would, in its own folder, without paying torch's import each time."""
    spec = []
    for name, smoke in SMOKES.items():
        folder = tmp_path_factory.mktemp(re.sub(r"\W", "_", name))
        if smoke.prepare:
            smoke.prepare(folder)
        spec.append({"name": name, "script": str(BENCH / name.split(":")[0]), "argv": smoke.argv(folder),
                     "cwd": str(folder), "env": {"TMPDIR": str(folder)}})  # scripts' temporary folders go with it
    where = tmp_path_factory.mktemp("runner")
    (where / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "SSLAPP_DATASETS": str(datasets), "OMP_NUM_THREADS": "1", "SSLAPP_WORKER_WARM_UP": "0",
           "MPLBACKEND": "Agg"}
    p = subprocess.run([sys.executable, str(ROOT / "tests" / "_bench_runner.py"), str(where / "spec.json"),
                        str(where / "results.json")], cwd=where, env=env, capture_output=True, text=True, timeout=280)
    assert p.returncode == 0, p.stderr[-3000:]
    results = json.loads((where / "results.json").read_text())
    for entry in spec:
        results[entry["name"]]["folder"] = Path(entry["cwd"])
    return results


@pytest.mark.parametrize("name", sorted(SMOKES))
def test_benchmark_script_runs(name, runs):
    smoke, run = SMOKES[name], runs[name]
    out = run["stdout"] + run["stderr"]
    assert run["rc"] == 0, f"{name} {' '.join(smoke.argv(run['folder']))} exited {run['rc']}:\n{out[-3000:]}"
    for pattern in smoke.expect:
        assert re.search(pattern, out), f"{pattern!r} not in the output of {name}:\n{out[-3000:]}"
    if smoke.json_keys:
        objects = _json_objects(run["stdout"])
        assert objects, f"{name} printed no JSON:\n{out[-3000:]}"
        assert set(smoke.json_keys) <= set(objects[0]), objects[0]
    for rel in smoke.files:
        assert (run["folder"] / rel).stat().st_size > 0, rel


def _scripts() -> set[str]:
    return {p.name for p in BENCH.iterdir() if p.suffix in (".py", ".sh")} - HELPERS


def test_every_benchmark_script_has_a_smoke_run():
    covered = {name.split(":")[0] for name in SMOKES} | {"gpu_check.sh"}
    assert _scripts() - covered == set(), "add a tiny run of each new script to SMOKES"
    assert covered - _scripts() == set(), "SMOKES names scripts that are gone"
    for helper in HELPERS:
        assert "__main__" not in (BENCH / helper).read_text(), f"{helper} became a script: give it a smoke run"


def _gpu_check_python() -> str:
    """The Python program gpu_check.sh feeds to the interpreter (its heredoc)."""
    text = (BENCH / "gpu_check.sh").read_text()
    match = re.search(r"<<'EOF'\n(.*?)\nEOF\n", text, re.S)
    assert match, "gpu_check.sh no longer runs a quoted heredoc; update this test"
    return match.group(1)


def test_gpu_check_parses_and_its_imports_exist():
    """gpu_check.sh needs CUDA and minutes, so here: bash parses it, its Python compiles, and every
    name it imports from sslapp exists (the layout moves; the GPU machine is lent rarely)."""
    p = subprocess.run(["bash", "-n", str(BENCH / "gpu_check.sh")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    tree = ast.parse(_gpu_check_python())
    imports = [f"from {n.module} import {', '.join(a.name for a in n.names)}" for n in ast.walk(tree)
               if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("sslapp")]
    assert len(imports) >= 3, imports  # the bench data, pretrain and the foreground job runner
    exec("\n".join(imports), {})  # here, not in a new process: this one has torch loaded already
