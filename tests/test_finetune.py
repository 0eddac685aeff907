"""Training on labels: linear probe and full fine-tune on tiny real workspaces, honest estimates,
propagation, and a saved classifier that reproduces the stored predictions."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from _finetune_ws import CACHE, COLOURS, make_workspace, square_png
from PIL import Image


def stored_accuracy(ws, truth, run_id: int) -> float:
    preds = ws.store.predictions(run_id)
    assert len(preds) == len(truth)
    labelled = {r["item_id"] for r in ws.store.labels()}
    rest = [p for p in preds if p["item_id"] not in labelled]
    return float(np.mean([p["class_name"] == truth[p["item_id"]] for p in rest]))


def assert_reload_reproduces(ws, result) -> None:
    """The saved classifier, run on the cached images, gives the stored predictions (to 1e-5)."""
    from sslapp.finetune.full import predict_images
    from sslapp.finetune.model import load_classifier
    from sslapp.ingest.cache import read_cache

    model = load_classifier(ws.root / result["classifier"])
    pairs = ws.store.item_ids_and_cache_index()
    proba = predict_images(model, read_cache(ws), np.array([p[1] for p in pairs]), device="cpu")
    preds = {p["item_id"]: p for p in ws.store.predictions(result["run"])}
    art = ws.store.latest_artifact("classifier")
    for (item_id, _), row in zip(pairs, proba, strict=True):
        stored = preds[item_id]
        assert model.classes[int(row.argmax())] == stored["class_name"]
        assert abs(float(row.max()) - stored["confidence"]) < 1e-5
    assert art["meta"]["classes"] == model.classes


def run_job(ws, params):
    from sslapp.cli.common import run_job_in_foreground

    return run_job_in_foreground(ws, "finetune", params)


def test_linear_job_beats_chance_estimates_and_reloads(tmp_path):
    ws, truth = make_workspace(tmp_path, per_class=12)
    job = run_job(ws, {"mode": "linear", "propagate": "auto"})
    assert job["status"] == "done", job["error"]
    result = job["result"]
    assert result["mode"] == "linear" and sorted(result["classes"]) == sorted(COLOURS)
    assert stored_accuracy(ws, truth, result["run"]) > 0.6  # chance is 1/3
    est = result["estimate"]
    assert 0.0 <= est["low"] <= est["mean"] <= est["high"] <= 1.0 and est["std"] > 0
    assert est["n_labels"] == 12 and "from 12 labels" in est["text"]
    summary = ws.store.run(result["run"])["summary"]
    assert "not a test accuracy" in summary["estimate"]["kind"]
    assert np.array(summary["estimate"]["confusion"]).sum() == 12
    assert {r["class"] for r in summary["estimate"]["per_class"]} == set(COLOURS)
    assert summary["features"] == "SimCLR resnet18-std"  # the embedding used, by name
    assert ws.store.latest_artifact("classifier")["meta"]["cv"]["n_labels"] == 12
    assert_reload_reproduces(ws, result)


def test_features_are_computed_once_per_encoder_and_reused(tmp_path):
    ws, _ = make_workspace(tmp_path, per_class=5, labels_per_class={"red": 2, "green": 2})
    first = run_job(ws, {"mode": "linear", "propagate": "off"})["result"]
    assert len(ws.store.artifacts("embeddings")) == 1
    cached = ws.store.latest_artifact("embeddings")
    second = run_job(ws, {"mode": "linear", "propagate": "off"})["result"]
    assert ws.store.artifacts("embeddings") == [cached]  # nothing recomputed
    assert "SimCLR" in ws.store.run(second["run"])["summary"]["features"]
    assert first["estimate"] == second["estimate"]


def test_full_finetune_beats_chance_and_reloads(tmp_path):
    ws, truth = make_workspace(tmp_path, per_class=12)
    job = run_job(ws, {"mode": "full", "propagate": "off", "epochs": 2, "min_steps_per_epoch": 2})
    assert job["status"] == "done", job["error"]
    result = job["result"]
    assert result["mode"] == "full"
    assert stored_accuracy(ws, truth, result["run"]) > 0.6
    assert 0.0 <= result["estimate"]["mean"] <= 1.0 and result["estimate"]["std"] > 0
    summary = ws.store.run(result["run"])["summary"]
    assert summary["history"]["epochs"] and summary["history"]["early_stopping"]
    assert ws.store.metrics(result["run"], "train_loss")
    assert_reload_reproduces(ws, result)


def test_fine_tune_function_learns_from_chance_head(tmp_path):
    """The full loop itself lowers the loss (not just the probe that starts its head)."""
    import torch

    from sslapp.finetune.full import FullConfig, fine_tune
    from sslapp.models.encoder import Encoder, EncoderConfig

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 30)
    images = np.stack([np.asarray(Image.open(io.BytesIO(square_png(rng, list(COLOURS.values())[k], CACHE))))
                       for k in y])
    torch.manual_seed(0)
    enc = Encoder(EncoderConfig("resnet18-std", CACHE, CACHE))
    _, hist = fine_tune(enc, images, np.arange(30), y, list(COLOURS), device="cpu",
                        config=FullConfig(epochs=3, batch_size=16, min_steps_per_epoch=2, lr=3e-3))
    losses = [e["train_loss"] for e in hist["epochs"]]
    assert losses[-1] < losses[0]
    assert all(0 <= e["val_accuracy"] <= 1 for e in hist["epochs"])


def test_single_label_class_flagged_and_one_class_refused(tmp_path):
    ws, _ = make_workspace(tmp_path, per_class=8, labels_per_class={"red": 3, "green": 3, "blue": 1})
    job = run_job(ws, {"mode": "linear"})
    assert job["status"] == "done", job["error"]
    summary = ws.store.run(job["result"]["run"])["summary"]
    assert any("Only one label for 'blue'" in w for w in summary["warnings"])
    blue = next(r for r in summary["estimate"]["per_class"] if r["class"] == "blue")
    assert blue["single_label"] and blue["tested"] == 0  # trained on, never estimated

    job = run_job(ws, {"mode": "linear", "propagate": "sometimes"})
    assert job["status"] == "failed" and "propagate must be" in job["error"]
    job = run_job(ws, {"mode": "huge"})
    assert job["status"] == "failed" and "mode must be one of" in job["error"]

    ws2, _ = make_workspace(tmp_path / "b", per_class=4, labels_per_class={"red": 3})
    job = run_job(ws2, {"mode": "linear"})
    assert job["status"] == "failed" and "at least 2 classes" in job["error"]
    assert ws2.store.latest_artifact("classifier") is None


def test_cv_estimates_stay_in_range_with_spread():
    from sslapp.estimators.api import fit_probe
    from sslapp.estimators.evaluate import check_labels, cross_validate, wilson_interval

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 1.2
    y = rng.integers(0, 3, 200)
    X = centres[y] + rng.normal(size=(200, 8))
    for sizes in [(2, 2, 2), (5, 5, 1), (12, 12, 12), (30, 2, 2)]:
        idx = np.concatenate([np.flatnonzero(y == k)[:s] for k, s in enumerate(sizes)])
        yl = y[idx]

        def fp(tr, te, idx=idx, yl=yl):
            return fit_probe(X, idx[tr], yl[tr], n_classes=3, propagate="off")[0].predict_proba(X[idx[te]])

        est = cross_validate(yl, fp, 3)
        assert 0.0 <= est.low <= est.mean <= est.high <= 1.0
        assert est.std > 0 and est.n_labels == len(idx)
        assert f"from {len(idx)} labels" in est.text()
    lo, hi = wilson_interval(20, 20)
    assert 0.8 < lo < 1.0 and hi == 1.0
    assert check_labels(np.array([0, 0]), 2).trainable is False
    assert "at least 2 classes" in check_labels(np.array([0, 0]), 2).messages[0]
    assert cross_validate(np.array([0, 1]), lambda tr, te: None, 2).mean is None


def test_propagation_and_probe_probabilities():
    from sklearn.linear_model import LogisticRegression

    from sslapp.estimators.api import train_on_embeddings
    from sslapp.estimators.linear import LinearProbe
    from sslapp.estimators.propagate import pseudo_labels

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 3
    y = rng.integers(0, 3, 300)
    X = centres[y] + rng.normal(size=(300, 16))
    idx = np.concatenate([np.flatnonzero(y == k)[:2] for k in range(3)])
    for method in ("spreading", "self-training", "poisson"):
        pl = pseudo_labels(method, X, idx, y[idx], 3)
        assert len(pl) > 30 and not set(pl.index) & set(idx)
        assert (pl.labels == y[pl.index]).mean() > 0.9
    for propagate in ("auto", "off", "spreading", "self-training", "poisson"):
        P = train_on_embeddings(X, idx, y[idx], propagate=propagate)
        assert P.shape == (300, 3) and np.allclose(P.sum(1), 1)
        assert (P.argmax(1) == y).mean() > 0.9
    # binary: our softmax head reproduces sklearn's sigmoid probabilities
    two = y < 2
    probe = LinearProbe(2).fit(X[two], y[two])
    from sslapp.vectors import l2_normalize

    ref = LogisticRegression(C=probe.C, class_weight="balanced", max_iter=2000).fit(l2_normalize(X[two]), y[two])
    assert np.allclose(probe.predict_proba(X[two]), ref.predict_proba(l2_normalize(X[two])), atol=1e-6)
    with pytest.raises(ValueError, match="propagate must be"):
        train_on_embeddings(X, idx, y[idx], propagate="bogus")


def test_cli_finetune_json(tmp_path, capsys):
    from sslapp.cli import main

    ws, _ = make_workspace(tmp_path, per_class=6, labels_per_class={"red": 2, "green": 2})
    argv = ["finetune", str(ws.root), "--mode", "linear", "--propagate", "off", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "done" and data["mode"] == "linear"
    assert data["classes"] == ["red", "green"] and data["estimate"]["n_labels"] == 4
    assert os.path.exists(data["classifier"])
    ws.store.remove_labels([r["item_id"] for r in ws.store.labels() if r["class_name"] == "green"])
    assert main(argv) != 0
    captured = capsys.readouterr()
    assert "at least 2 classes" in captured.err
    assert json.loads(captured.out)["status"] == "failed"


def test_the_headline_is_class_balanced_and_unbalanced_labels_are_warned_of():
    """30 easy labels of one class and 8 each of two that look alike: plain accuracy flatters the
    classifier, the class-balanced headline does not, and the labels' imbalance is named."""
    from sslapp.estimators.api import fit_probe
    from sslapp.estimators.evaluate import balanced_interval, check_labels, cross_validate, wilson_interval

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(30, 8)) + 6, rng.normal(size=(16, 8))])  # cats and dogs: one cloud
    y = np.repeat([0, 1, 2], [30, 8, 8])

    def fit_predict(tr, te):
        return fit_probe(X, tr, y[tr], n_classes=3, propagate="off")[0].predict_proba(X[te])

    est = cross_validate(y, fit_predict, 3, class_names=["cars", "cats", "dogs"])
    recalls = [r["recall"] for r in est.per_class]
    assert recalls[0] == 1.0 and max(recalls[1:]) < 0.8
    assert est.mean == pytest.approx(np.mean(recalls)) and est.pooled > est.mean + 0.1
    assert est.low <= est.mean <= est.high and est.pooled_low <= est.pooled <= est.pooled_high
    assert "class-balanced" in est.text() and est.text().startswith(f"{100 * est.mean:.0f}% (95% interval")
    assert est.unbalanced and est.imbalance == pytest.approx(30 / 8)
    warning = next(m for m in est.messages if "very unbalanced" in m)
    assert "'cars' has 30 labels, 'cats' only 8 (more than 3x)" in warning

    assert not any("unbalanced" in m for m in check_labels(np.repeat([0, 1, 2], [12, 4, 4]), 3).messages)  # 3x
    assert any("unbalanced" in m for m in check_labels(np.repeat([0, 1, 2], [13, 4, 4]), 3).messages)
    # 2 labels or fewer in most classes: the estimate is said to read low (each label is tested one short)
    from sslapp.estimators.evaluate import FEW_MESSAGE
    assert FEW_MESSAGE in check_labels(np.repeat([0, 1, 2, 3], [5, 2, 2, 1]), 4).messages
    assert FEW_MESSAGE not in check_labels(np.repeat([0, 1, 2, 3], [5, 3, 3, 2]), 4).messages
    assert FEW_MESSAGE not in check_labels(np.repeat([0, 1, 2], [2, 1, 1]), 3).messages  # no estimate to speak of
    # the interval: equal tests per class give the pooled Wilson interval; a class with few tests widens it
    assert balanced_interval(np.array([8, 6]), np.array([10, 10])) == pytest.approx(wilson_interval(14, 20))
    lo, hi = balanced_interval(np.array([27, 3]), np.array([30, 3]))
    plo, phi = wilson_interval(30, 33)
    assert lo <= 0.95 <= hi and hi - lo > 1.5 * (phi - plo)
    lo, hi = balanced_interval(np.array([5, 5]), np.array([5, 5]))
    assert hi == 1.0 and 0.5 < lo < 0.9  # all right still leaves room below


def test_labels_picked_for_doubt_are_weighed_to_the_unlabelled_pool():
    """Uncertainty picks are the hard items: held-out labels at low confidence are mostly wrong, the pool
    is mostly sure and right. Weighed to the pool's confidences the estimate moves up toward the pool's
    accuracy; with the pool's own mix, or too few labels to bin, nothing changes."""
    from sslapp.estimators.evaluate import confidence_weights, cross_validate

    held = np.linspace(0.35, 0.95, 20)
    assert np.allclose(confidence_weights(held, held), 1.0)  # the same mix: no reweighting
    w = confidence_weights(held, np.full(500, 0.97))
    assert w.mean() == pytest.approx(1.0) and w[-1] > w[0] and np.allclose(w[:15], 0)  # only the sure quarter+
    assert np.allclose(confidence_weights(held[:7], np.full(9, 0.97)), 1.0)  # under 8 held out: one bin, ones

    y = np.repeat([0, 1], 20)
    conf = np.tile(np.linspace(0.5, 0.99, 20), 2)  # each class: half doubtful (wrong), half sure (right)
    right = conf > 0.75

    def fit_predict(tr, te):
        proba = np.zeros((len(te), 2))
        for row, i in enumerate(te):
            guess = y[i] if right[i] else 1 - y[i]
            proba[row, guess], proba[row, 1 - guess] = conf[i], 1 - conf[i]
        return proba

    plain = cross_validate(y, fit_predict, 2)
    weighed = cross_validate(y, fit_predict, 2, pool_confidence=np.full(300, 0.95))
    assert not plain.weighted and plain.mean == pytest.approx(right.mean(), abs=0.05)
    assert weighed.weighted and weighed.unweighted == plain.mean and weighed.mean > 0.95
    assert weighed.low <= weighed.mean <= weighed.high and weighed.high - weighed.low > plain.high - plain.low


def test_the_job_and_cli_show_the_balanced_estimate_and_the_imbalance(tmp_path, capsys):
    from sslapp.cli import main

    ws, _ = make_workspace(tmp_path, per_class=14, labels_per_class={"red": 13, "green": 4, "blue": 4})
    assert main(["finetune", str(ws.root), "--mode", "linear", "--propagate", "off"]) == 0
    out = capsys.readouterr()
    assert "class-balanced, from 21 labels" in out.out
    assert "warning: The labels are very unbalanced: 'red' has 13 labels" in out.err
    summary = ws.store.runs(kind="finetune", status="done", limit=1)[0]["summary"]
    est = summary["estimate"]
    tested = [r["recall"] for r in est["per_class"] if r["tested"] > 0]
    assert est["mean"] == pytest.approx(np.mean(tested)) and est["measure"].startswith("class-balanced")
    assert est["unbalanced"] and est["pooled"] is not None and est["low"] <= est["mean"] <= est["high"]
    meta = ws.store.latest_artifact("classifier")["meta"]["cv"]
    assert meta["unbalanced"] and meta["imbalance"] == pytest.approx(13 / 4)
