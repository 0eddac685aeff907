"""Export options on a real tiny workspace: quantized ONNX copies (int8, fp16) and `sslapp predict` on them,
the encoder alone, an export after a real fine-tuning job, and safe names.

The full and default exports are in test_export.py; both files read one workspace (tests/conftest.py) and
copy it where a test changes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _export_ws import CLASSES, app_probs, export_cli

from sslapp.export.labels import LABEL_FILES

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def built(export_built):
    """The workspace with its classifier (tests/conftest.py); each test exports what it checks."""
    return export_built


def _app_probs(built) -> dict[str, np.ndarray]:
    return app_probs(built["ws"], built["model"])


def _predicted(out: Path, images: list[Path], model: str | None = None) -> dict[str, np.ndarray]:
    """`sslapp predict` (the CLI, in its own process) -> {path: probabilities in class order}."""
    proc = subprocess.run([sys.executable, "-m", "sslapp", "predict", str(out), *map(str, images), "--json",
                           "--top-k", str(len(CLASSES)), *(["--model", model] if model else [])],
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {r["path"]: np.array([dict(r["top_k"])[c] for c in CLASSES]) for r in json.loads(proc.stdout)}


def test_int8_alone_reports_its_agreement_and_predict_runs_it(built, tmp_path, capsys):
    """`--quantize int8` without the float32 ONNX: calibrated on the cache, its agreement in model.json,
    and `sslapp predict` runs it by default with exactly that agreement with the app."""
    from sslapp.cli import main

    out = tmp_path / "out"
    m = export_cli([str(built["ws"].root), str(out), "--formats", "safetensors", "--quantize", "int8"])
    assert set(m["files"]) == {"classifier.int8.onnx", "classifier.safetensors", *LABEL_FILES,
                               "predict_onnx.py", "README.md"}
    assert {p.name for p in out.iterdir()} == {*m["files"], "model.json"}  # no scratch left behind
    q = m["quantized"]
    assert q["type"] == "int8" and q["file"] == m["predict_model"] == "classifier.int8.onnx"
    assert q["bytes"] == m["files"]["classifier.int8.onnx"]["bytes"] < 0.35 * q["fp32_bytes"]
    assert q["inputs"] == "workspace images" and q["n_images"] == 16  # fewer than 40: all calibrate and check
    assert q["calibration_images"] == 16 and q["calibration_images_checked_too"] is True
    assert 0 <= q["top1_agreement"] <= 1 and 0 <= q["mean_abs_prob_diff"] <= q["max_abs_prob_diff"] <= 1
    images = [built["root"] / "images", built["root"] / "unlabelled"]
    app = _app_probs(built)
    got = _predicted(out, images)
    assert len(got) == 16
    same = np.mean([got[p].argmax() == app[p].argmax() for p in got])
    worst = max(np.abs(got[p] - app[p]).max() for p in got)
    assert abs(same - q["top1_agreement"]) < 1e-3 and abs(worst - q["max_abs_prob_diff"]) < 1e-4
    readme = (out / "README.md").read_text()
    assert "classifier.int8.onnx" in readme and f"{100 * q['top1_agreement']:.1f}%" in readme and "$" not in readme
    assert "`classifier.onnx`" in readme  # listed as left out
    capsys.readouterr()
    assert main(["predict", str(out), str(images[0]), "--model", "fp32"]) == 2
    assert "no ONNX classifier 'fp32'" in capsys.readouterr().err


def test_fp16_beside_the_full_model(built, tmp_path):
    """`--quantize fp16` adds a half-size copy; predict keeps the float32 model unless `--model fp16`."""
    from sslapp.export.export import export_workspace
    from sslapp.export.predict import Predictor

    out = tmp_path / "out"
    m = export_workspace(built["ws"], out, quantize="fp16")
    q = m["quantized"]
    assert {"classifier.onnx", "classifier.fp16.onnx"} <= set(m["files"]) and m["predict_model"] == "classifier.onnx"
    assert 0.4 * q["fp32_bytes"] < q["bytes"] < 0.6 * q["fp32_bytes"] and "calibration_images" not in q
    assert q["max_abs_prob_diff"] < 0.05
    assert Predictor(out).model_file == "classifier.onnx" and Predictor(out, model="fp16").model_file == q["file"]
    images = [built["root"] / "images", built["root"] / "unlabelled"]
    app = _app_probs(built)
    got = _predicted(out, images, "fp16")
    assert abs(max(np.abs(got[p] - app[p]).max() for p in got) - q["max_abs_prob_diff"]) < 1e-4
    readme = (out / "README.md").read_text()
    assert "--model fp16" in readme and "fp16" in readme


def test_encoder_only(export_base, tmp_path, capsys):
    from sslapp.cli import main
    from sslapp.export.export import NoClassifierError, export_workspace
    from sslapp.export.manifest import ExportError, read_manifest
    from sslapp.export.predict import predict

    ws, _ = export_base.copy(tmp_path, with_classifier=False)
    with pytest.raises(NoClassifierError, match="--encoder-only"):
        export_workspace(ws, tmp_path / "out")
    assert main(["export", str(ws.root), str(tmp_path / "out"), "--formats", "onnx"]) == 3
    assert "--encoder-only" in capsys.readouterr().err and not (tmp_path / "out").exists()
    with pytest.raises(ExportError, match="--quantize"):
        export_workspace(ws, tmp_path / "out", encoder_only=True, quantize="int8")
    m = export_workspace(ws, tmp_path / "out", encoder_only=True)  # default formats: ONNX and safetensors
    assert m["kind"] == "encoder" and m["classes"] == [] and m["estimated_accuracy"] is None
    assert m["labels"]["propagate_threshold"] is None  # no classifier: no machine guesses in the labels
    assert "No `propagated` rows" in (tmp_path / "out" / "README.md").read_text()
    assert set(read_manifest(tmp_path / "out")["files"]) == {"encoder.onnx", "encoder.safetensors", *LABEL_FILES,
                                                           "README.md"}
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "out" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    feats = session.run(None, {"image": np.random.rand(3, 3, 24, 24).astype(np.float32)})[0]
    assert feats.shape == (3, 512)
    with pytest.raises(ExportError, match="only the encoder"):
        predict(tmp_path / "out", [export_base.root / "images"])
    every = export_cli([str(ws.root), str(tmp_path / "all"), "--encoder-only", "--all"])
    assert set(every["files"]) == {"encoder.onnx", "encoder.torchscript.pt", "encoder.safetensors", *LABEL_FILES,
                                   "README.md"} and every["left_out"]["files"] == []


def test_model_json_names_the_encoder_the_classifier_was_trained_on(export_base, tmp_path):
    """A newer encoder (a later pretraining run) does not become the exported classifier's history."""
    ws, _ = export_base.copy(tmp_path)
    ws.store.add_artifact("encoder", "checkpoints/encoder.safetensors", {"method": "byol", "epochs": 9},
                          ws.store.create_run("pretrain", {"method": "byol"}))
    m = export_cli([str(ws.root), str(tmp_path / "out"), "--formats", "safetensors"])
    assert m["training_data"]["pretraining"] == {"method": "simclr", "epochs": 1}
    encoder_only = export_cli([str(ws.root), str(tmp_path / "enc"), "--encoder-only", "--formats", "safetensors"])
    assert encoder_only["training_data"]["pretraining"] == {"method": "byol", "epochs": 9}  # the newest


def test_real_finetune_job_predictions_match_export(export_base, tmp_path):
    """The journey: the finetune job stores the predictions the app shows; `predict` on the files agrees."""
    from sslapp.cli.common import run_job_in_foreground
    from sslapp.export.export import export_workspace
    from sslapp.export.predict import predict

    ws, _ = export_base.copy(tmp_path, with_classifier=False)
    job = run_job_in_foreground(ws, "finetune", {"mode": "linear", "propagate": "off"})
    assert job["status"] == "done", job["error"]
    m = export_workspace(ws, tmp_path / "out", formats="onnx")
    assert m["estimated_accuracy"]["n_labels"] == 12 and m["head"]["feature_normalisation"] == "l2"
    images = [export_base.root / "images", export_base.root / "unlabelled"]
    results = {r["path"]: r for r in predict(tmp_path / "out", images)}
    sources = {it["id"]: it["source"] for it in ws.store.items()}
    shown = ws.store.predictions()
    assert len(shown) == len(results) == 16
    for p in shown:
        r = results[sources[p["item_id"]]]
        assert r["class"] == p["class_name"] and abs(r["confidence"] - p["confidence"]) < 1e-4


def test_imagefolder_names_are_safe_and_export_names_stay_inside(tmp_path):
    from _export_ws import make_images

    from sslapp.export.imagefolder import write_imagefolder
    from sslapp.export.job import export_target
    from sslapp.export.labels import label_rows
    from sslapp.export.manifest import ExportError
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    made = make_images(tmp_path)
    ws = open_workspace(tmp_path / "ws", cache_size=24)
    ingest(ws, [tmp_path / "unlabelled"], workers=1)
    ids = [it["id"] for it in ws.store.items()]
    for item_id, name in zip(ids, ["../evil", "a/b", "a_b", "A_B"], strict=True):
        ws.store.set_labels([item_id], ws.store.class_id(name, create=True), source="user")
    rows = label_rows(ws)
    tree = write_imagefolder(ws, rows, tmp_path / "tree")
    folders = sorted(p.name for p in (tmp_path / "tree").iterdir())
    assert len(folders) == 4 and len({f.lower() for f in folders}) == 4
    assert all(p.resolve().parent == (tmp_path / "tree").resolve() for p in (tmp_path / "tree").iterdir())
    assert tree["images"] == 4 and len(made["unlabelled"]) == 4
    assert export_target(ws, "mine").parent == ws.exports_dir.resolve()
    for bad in ("../out", "/tmp/x", ".."):
        with pytest.raises(ExportError):
            export_target(ws, bad)
