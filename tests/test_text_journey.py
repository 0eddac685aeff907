"""The journey after ingest on a text workspace, through the real CLI and pages: a CSV of 40 texts in four
topics, 3 labels per topic, the TF-IDF start only (cheap; MiniLM is tested in test_text_encoders.py).
The steps that work on vectors (finetune's probe, suggest, review, similar, near-duplicates, the
embeddings' export and import) run and name FILE:ROW sources; an image method and the export options texts
do not offer (the encoder alone, TorchScript, quantized copies; the export itself is tests/test_text_export.py)
refuse with what to do instead, a non-zero exit code and nothing stored changed; the Pretrain page offers the
text methods only (their runs are tests/test_text_pretrain.py's), the Export page only what texts have."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from text_topics import NAMES, TOPICS

from sslapp.cli import main
from sslapp.features.read import STARTS_SETTING
from sslapp.ingest.ingest import ingest
from sslapp.maps.read import load_map
from sslapp.modalities import (
    export_option_refusal,
    export_refusal,
    get_modality,
    method_refusal,
    pretrain_refusal,
)
from sslapp.workspace import open_workspace


@pytest.fixture
def text_ws(tmp_path, monkeypatch):
    """40 texts (rows 1-10 sport, 11-20 cooking, ...) ingested with the real ingest, rows 1-3 of each topic
    labelled through `sslapp label` with a FILE:ROW label file, features from TF-IDF only. Sources are
    named from tmp_path, as `notes.csv:ROW`."""
    table = tmp_path / "notes.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text"])
        for texts in TOPICS.values():
            writer.writerows([t] for t in texts)
    ws = open_workspace(tmp_path / "ws", create=True)
    report = ingest(ws, [table], workers=1, base=str(tmp_path))
    assert report["added"] == 40 and not report["skipped"], report
    ws.store.set_setting(STARTS_SETTING, ["tfidf"])
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "class"])
        writer.writerows([f"{table}:{10 * t + i + 1}", name] for t, name in enumerate(NAMES) for i in range(3))
    assert main(["label", str(ws.root), str(labels)]) == 0
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    return ws, table


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _stored(ws) -> tuple:
    """What a refused step must leave as it was: jobs, runs, artifacts and labels."""
    return (len(ws.store.jobs(limit=1000)), [len(ws.store.artifacts(k, limit=1000)) for k in ("encoder", "export")],
            ws.store.label_counts(),
            sorted(p.name for p in ws.root.iterdir()))


def test_the_contract_says_what_texts_lack():
    text, image = get_modality("text"), get_modality("image")
    assert pretrain_refusal(image) is None and export_refusal(image) is None and export_refusal(text) is None
    assert pretrain_refusal(text) is None and method_refusal(text, "simcse") is None
    assert "'simclr' does not train on texts; choose one of: simcse, word2vec, mlm, mlm-scratch" in \
        method_refusal(text, "simclr")
    assert "'word2vec' does not train on images" in method_refusal(image, "word2vec")
    assert image.full_finetune and not text.full_finetune and image.exports_models and text.exports_models
    assert export_option_refusal(image, ("onnx", "torchscript"), ("encoder", "quantize", "imagefolder")) is None
    assert export_option_refusal(text, ("onnx", "safetensors")) is None
    refused = export_option_refusal(text, ("onnx", "torchscript"), ("quantize",))
    assert refused.startswith("a text classifier export does not offer the format(s) torchscript and --quantize")
    assert "(onnx, safetensors)" in refused


def test_vectors_steps_run_on_texts(text_ws, capsys, tmp_path):
    ws, table = text_ws
    code, out, err = _cli(capsys, "finetune", str(ws.root), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["mode"] == "linear" and result["classes"] == NAMES
    preds = {p["item_id"]: p["class_name"] for p in ws.store.predictions()}
    assert len(preds) == 40
    truth = {it["id"]: NAMES[(int(it["source"].rsplit(":", 1)[1]) - 1) // 10] for it in ws.store.items()}
    right = sum(preds[i] == truth[i] for i in preds)
    assert right >= 32 and result["estimate"]["mean"] >= 0.75, (right, result["estimate"])  # topic words: the probe on TF-IDF gets most of the 28 unlabelled texts

    code, out, err = _cli(capsys, "finetune", str(ws.root), "--mode", "full")
    assert code != 0 and "full fine-tuning is not built for texts" in err and "--mode linear" in err

    code, out, err = _cli(capsys, "suggest", str(ws.root), "--json")
    assert code == 0, err
    suggested = json.loads(out)
    assert suggested and all(s["source"].startswith("notes.csv:") for s in suggested)

    said = {}
    for argv in (["review", str(ws.root)], ["near-duplicates", str(ws.root)],
                 ["similar", str(ws.root), "notes.csv:1", "--k", "5"]):
        code, out, said[argv[0]] = _cli(capsys, *argv)
        assert code == 0, (argv, said[argv[0]])
        assert argv[0] == "near-duplicates" or "notes.csv:" in out, (argv, out)
    assert not any("image" in err for err in said.values()), said  # messages name what the workspace holds
    assert "5 texts nearest to item" in said["similar"] and "texts beyond one per group" in said["near-duplicates"]

    vectors = tmp_path / "vectors.npy"
    code, out, err = _cli(capsys, "embeddings", "export", str(ws.root), str(vectors))
    assert code == 0, err
    assert vectors.with_suffix(".paths.txt").read_text().splitlines()[0] == "notes.csv:1"
    code, out, err = _cli(capsys, "embeddings", "import", str(ws.root), str(vectors), "--name", "mine")
    assert code == 0 and "40 of 40" in out + err, err


def test_image_methods_and_the_export_options_texts_lack_refuse(text_ws, capsys, tmp_path):
    ws, _ = text_ws
    before = _stored(ws)
    code, out, err = _cli(capsys, "pretrain", str(ws.root), "--minutes", "0.1", "--method", "simclr")
    assert code == 2 and "'simclr' does not train on texts; choose one of: simcse, word2vec, mlm" in err
    code, out, err = _cli(capsys, "pretrain", str(ws.root), "--backbone", "resnet18", "--init", "scratch")
    assert code == 2 and "--backbone, --init choose an image network; texts have none to choose" in err
    assert _stored(ws) == before  # no job queued, nothing written

    for extra in (["--encoder-only"], ["--encoder-files"], ["--formats", "torchscript"]):
        code, out, err = _cli(capsys, "export", str(ws.root), str(tmp_path / "out"), *extra)
        assert code == 2 and "a text classifier export does not offer" in err, err
        assert not (tmp_path / "out").exists() and _stored(ws) == before

    # a queued job (as the pages or the API would start) fails with the same words, recording no run
    from sslapp.cli.common import run_job_in_foreground

    for kind, params, words in (("pretrain", {"minutes": 0.1, "method": "mae"}, "'mae' does not train on texts"),
                                ("export", {"encoder_only": True}, "a text classifier export does not offer")):
        job = run_job_in_foreground(ws, kind, params)
        assert job["status"] == "failed" and words in job["error"], job
    assert ws.store.runs(limit=100) == []


def _page(name: str) -> AppTest:
    at = AppTest.from_string(f"from sslapp.ui.pages import {name}\n{name}.render()\n", default_timeout=60).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_pretrain_and_train_pages_offer_what_texts_have_and_so_does_export(text_ws, capsys):
    ws, _ = text_ws
    at = _page("pretrain")
    assert at.selectbox(key="pt_method").options == [
        "SimCSE — MiniLM tuned on your texts, dropout makes the two views",
        "Word2Vec + SIF — word vectors learned from your texts, averaged per text",
        "Masked language modelling — MiniLM continued on your texts (BERT's objective)",
        "Masked language modelling — a small BERT from scratch on your texts"]
    keys = {s.key for s in at.selectbox}
    assert "pt_backbone" not in keys and "pt_init" not in keys and "pt_device" not in keys  # nothing of images
    assert "Learn features from all 40 texts" in at.caption[0].value and not ws.store.jobs(limit=10)
    assert _page("train").radio(key="train_mode").options == ["auto", "linear"]  # no full fine-tune to fail

    at = _page("export")  # no classifier yet, and no encoder to export alone: what to do first
    assert any("label some texts and train a classifier" in i.value for i in at.info)
    assert not at.button and not at.warning and not ws.store.jobs(limit=10)

    assert _cli(capsys, "finetune", str(ws.root))[0] == 0
    at = _page("export")
    assert at.button[0].label == "Export" and not at.warning
    assert at.multiselect(key="export_formats").options == ["ONNX (onnxruntime, any language)",
                                                            "safetensors weights (sslapp's model classes)"]
    assert at.multiselect(key="export_formats").value == ["onnx", "safetensors"]
    assert not at.checkbox and not at.radio  # no encoder alone, quantized copy or ImageFolder tree

    unlabelled = next(it for it in ws.store.items() if it["label"] is None)  # a label given after training
    ws.store.set_labels([unlabelled["id"]], ws.store.class_id(NAMES[0]))
    at = _page("export")
    assert [w.value for w in at.warning] == ["Labels changed since this classifier was trained: an export now holds "
                                             "the classifier as it was trained, without them. Train again on the "
                                             "Train page to include them."]


def test_cluster_words_are_each_clusters_own_distinctive_words():
    """Class-based TF-IDF: words every cluster shares and stop words lose to the cluster's own words;
    noise (-1) gets no name."""
    from sslapp.modalities.text.arrays import encode_text
    from sslapp.modalities.text.topics import cluster_words

    texts = ["the card has not arrived", "where is the new card", "the card did not come",
             "I forgot the PIN", "how do I change the PIN", "the PIN is blocked",
             "what is the exchange rate", "why was the rate bad", "the exchange rate is wrong"]
    cache = np.stack([encode_text(t)[0] for t in texts])
    words = cluster_words(cache, np.arange(9), np.repeat([0, 1, 2], 3), 2)
    assert words == {0: ["card", "arrived"], 1: ["pin", "blocked"], 2: ["rate", "exchange"]}, words
    assert set(cluster_words(cache, np.arange(9), np.array([0] * 3 + [-1] * 6), 2)) == {0}
    assert cluster_words(cache, np.arange(3), np.full(3, -1), 2) == {}


def test_the_map_names_its_clusters_by_their_words_and_suggestions_say_texts(text_ws, capsys):
    ws, _ = text_ws
    code, out, err = _cli(capsys, "embed", str(ws.root), "--k", "4", "--json")
    assert code == 0, err
    m = load_map(ws)
    words = m.meta["cluster_words"]
    assert sorted(words) == ["0", "1", "2", "3"] and all(len(w) == 3 for w in words.values()), words
    text_of = {it["id"]: TOPICS[NAMES[(row - 1) // 10]][(row - 1) % 10]
               for it in ws.store.items() for row in [int(it["source"].rsplit(":", 1)[1])]}
    for c, named in words.items():  # each name is made of words of the cluster's own texts
        own = {w for i in m.item_ids[m.cluster == int(c)] for w in text_of[int(i)].split()}
        assert set(named) <= own, (c, named, own)
        assert m.cluster_name(int(c)) == f"cluster {c} · {', '.join(named)}"
    code, out, err = _cli(capsys, "suggest", str(ws.root), "--json")
    assert code == 0, err
    reasons = [s["reason"] for s in json.loads(out)]
    assert reasons and all(" · " in r and "(map cluster " in r for r in reasons), reasons
    assert not any("image" in r for r in reasons), reasons  # a reason names what the workspace holds
