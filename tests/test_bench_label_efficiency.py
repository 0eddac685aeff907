"""`sslapp bench label-efficiency` end to end on 60 tiny generated images in 3 classes, and on a CSV of texts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

CLASSES = ("red", "green", "blue")


@pytest.fixture
def image_folder(tmp_path):
    """images/<n>.png (class not in the path) plus truth.csv with relative paths."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    rows = []
    for c, name in enumerate(CLASSES):
        for i in range(20):
            a = (rng.random((20, 20, 3)) * 90).astype(np.uint8)
            a[..., c] += 140
            rel = f"images/{c * 20 + i:03d}.png"
            Image.fromarray(a).save(root / rel)
            rows.append(f"{rel},{name}\n")
    (root / "truth.csv").write_text("".join(rows))
    return root


def bench(capsys, *args):
    from sslapp.cli import main

    code = main(["bench", "label-efficiency", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tiny_run_with_seconds_of_pretraining_gives_json_of_the_documented_shape(image_folder, tmp_path, capsys):
    code, out, err = bench(capsys, str(image_folder), "--truth", str(image_folder / "truth.csv"),
                           "--budgets", "6,12", "--pretrain-minutes", "0.02", "--cache-size", "16",
                           "--workspace", str(tmp_path / "ws"), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"results", "baselines", "pretrain", "coverage"}
    assert set(data["pretrain"]) == {"method", "seconds", "epochs"} and "simclr" in data["pretrain"]["method"]
    assert {r["embedding"] for r in data["results"]} == {"app"}  # the app's own choice by default
    rows = {(r["strategy"], r["budget"]): r for r in data["results"]}
    assert set(rows) == {("auto", 6), ("auto", 12), ("random", 6), ("random", 12)}
    for (strategy, budget), r in rows.items():
        assert r["labels"] == budget and 0.0 <= r["accuracy"] <= 1.0
        assert ("accuracy_std" in r) == (strategy == "random")  # random is averaged over 3 seeds
        assert {"embedding", "strategy", "budget", "labels", "accuracy"} <= set(r)
        assert set(r) <= {"embedding", "strategy", "budget", "labels", "accuracy", "accuracy_std",
                          "balanced_accuracy", "estimate", "coverage"}  # fields added, none renamed
    names = {b["name"] for b in data["baselines"]}
    assert {"raw-pixels-random", "raw-pixels-typical", "embeddings-rf-random", "embeddings-rf-auto"} <= names
    for b in data["baselines"]:
        assert set(b) <= {"name", "budget", "accuracy", "accuracy_std"} and b["budget"] in (6, 12)
        assert 0.0 <= b["accuracy"] <= 1.0
    # Colour classes are trivially separable: with 12 labels the app's classifier beats chance by far.
    assert rows[("auto", 12)]["accuracy"] > 0.6
    # the estimate the app would show, checked against the truth at every budget of every run
    cov = data["coverage"]
    checks = cov["checks"]
    assert len(checks) == 2 * (1 + 3)  # two budgets of one auto run and three random seeds
    assert {(c["strategy"], c["budget"]) for c in checks} == set(rows)
    scored = [c for c in checks if c["covered"] is not None]
    assert cov["runs"] == len(scored) and cov["without_estimate"] == len(checks) - len(scored)
    assert cov["covered"] == sum(c["covered"] for c in scored) and cov["goal"] == 0.9
    assert 0.0 <= cov["rate"] <= 1.0 and cov["below"] + cov["above"] == cov["runs"] - cov["covered"]
    for c in scored:
        assert 0.0 <= c["low"] <= c["estimate"] <= c["high"] <= 1.0 and 0.0 <= c["true_balanced"] <= 1.0
        assert c["covered"] == (c["low"] <= c["true_balanced"] <= c["high"])
        assert sum(c["cv_tested"]) > 0 and len(c["cv_tested"]) == c["classes_labelled"]
    at12 = next(c for c in scored if (c["strategy"], c["budget"]) == ("auto", 12))
    assert at12["estimate"] > 0.6 and at12["covered"]
    assert rows[("auto", 12)]["coverage"] in (0.0, 1.0) and "estimate" in rows[("auto", 12)]
    assert "pretrained" in err


def test_bad_input_gets_a_clear_message(image_folder, tmp_path, capsys):
    truth = str(image_folder / "truth.csv")
    code, _, err = bench(capsys, str(image_folder), "--truth", str(tmp_path / "missing.csv"))
    assert code == 2 and "does not exist" in err
    code, _, err = bench(capsys, str(image_folder), "--truth", truth, "--budgets", "10,0")
    assert code == 2 and "positive integers" in err
    code, _, err = bench(capsys, str(image_folder), "--truth", truth, "--budgets", "100", "--pretrain-minutes", "0",
                         "--cache-size", "16", "--workspace", str(tmp_path / "ws2"))
    assert code == 2 and "must be below the number of items with an answer (60)" in err
    one_class = tmp_path / "one.csv"
    one_class.write_text("images/000.png,red\nimages/001.png,red\n")
    code, _, err = bench(capsys, str(image_folder), "--truth", str(one_class))
    assert code == 2 and "at least 2" in err


TOPICS = {
    "card": ["my card has not arrived yet", "where is the new card I ordered", "the card I was sent never came",
             "how long does a card take to be delivered", "I am still waiting for my card", "card delivery status"],
    "refund": ["I want my money back for this order", "how do I get a refund", "please refund the payment",
               "the refund has not reached my account", "can I return this and be refunded", "refund request"],
    "pin": ["I forgot my PIN", "how can I change my PIN number", "my PIN is blocked after three tries",
            "reset the PIN on my card", "where do I see my PIN", "I need a new PIN code"],
}


def test_a_table_of_texts_is_read_with_its_truth_column_hidden_from_the_app(tmp_path, capsys):
    import csv

    table = tmp_path / "texts.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "intent"])
        for n, (intent, texts) in enumerate((k, v) for k, v in TOPICS.items()):
            for i, text in enumerate(texts * 2):
                writer.writerow([f"{n}-{i}", f"{text} ({i})" if i >= len(texts) else text, intent])
    code, out, err = bench(capsys, str(table), "--text-column", "text", "--truth-column", "intent", "--budgets", "3,6",
                           "--pretrain-minutes", "0", "--random-seeds", "1", "--workspace", str(tmp_path / "ws"), "--json")
    assert code == 0, err
    data = json.loads(out)
    rows = {(r["strategy"], r["budget"]): r for r in data["results"]}
    assert set(rows) == {("auto", 3), ("auto", 6), ("random", 3), ("random", 6)}
    assert {"tfidf-random", "tfidf-typical"} <= {b["name"] for b in data["baselines"]}
    assert "ingested 36 texts" in err and "MiniLM" in err
    assert rows[("auto", 6)]["accuracy"] > 0.8  # three plain topics: the sentence model tells them apart
    from sslapp.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws", create=False)
    assert not ws.store.labels() and not ws.store.classes()  # the answers never reached the workspace
    code, _, err = bench(capsys, str(table), "--text-column", "text")
    assert code == 2 and "--truth-column" in err
    code, _, err = bench(capsys, str(table), "--text-column", "text", "--truth-column", "nope")
    assert code == 2 and "no column 'nope'" in err and "intent" in err
    code, _, err = bench(capsys, str(table), "--text-column", "text", "--truth-column", "intent",
                         "--budgets", "6", "--pretrain-minutes", "1", "--method", "simclr",
                         "--workspace", str(tmp_path / "ws3"))
    assert code == 2 and "'simclr' does not train on texts; use --method with one of: simcse, word2vec" in err


def test_coverage_counts_a_truth_inside_the_interval_and_names_the_misses():
    """check_row against the truth on the unrevealed rows; summary counts the runs inside."""
    from sslapp.bench.estimate_check import check_row, summary
    from sslapp.estimators.evaluate import cross_validate

    y = np.array([0] * 10 + [1] * 10)
    revealed = np.array([0, 1, 2, 3, 10, 11, 12, 13])
    pred = y.copy()
    pred[[4, 5, 14]] = 1 - y[[4, 5, 14]]  # unrevealed: class 0 gets 4 of 6 right, class 1 gets 5 of 6
    est = cross_validate(y[revealed], lambda tr, te: np.eye(2)[y[revealed][te]], 2)  # every held-out one right
    row = check_row(pred, est, y, revealed)
    assert row["true_balanced"] == pytest.approx((4 / 6 + 5 / 6) / 2) and row["classes_labelled"] == 2
    assert row["estimate"] == 1.0 and row["high"] == 1.0 and row["covered"] == (row["low"] <= 0.75)
    none = check_row(pred, None, y, revealed)
    assert none["estimate"] is None and none["covered"] is None
    out = summary([row, none, {**row, "covered": False, "low": 0.9}])
    assert out["runs"] == 2 and out["without_estimate"] == 1 and out["below"] == 1 + (not row["covered"])
