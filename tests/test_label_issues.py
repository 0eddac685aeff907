"""Likely label errors: the core on planted flips against a reference, the few-label graph route, and
`sslapp review` end to end on a real workspace of real PNG files with two wrong labels. The few-label
case on real photos (one big class) is in test_label_review_few.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_workspace import colour_workspace, sslapp, sslapp_here

from sslapp.curate.label_issues import choose_method, review_labels, too_few_labels, unchecked_classes


def blobs(per_class: int, classes: int = 4, dim: int = 24, spread: float = 1.6, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 2.0
    truth = np.repeat(np.arange(classes), per_class)
    return centres[truth] + rng.normal(size=(len(truth), dim)) * spread, truth


def plant(truth: np.ndarray, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(truth), n, replace=False)
    noisy = truth.copy()
    noisy[flipped] = (truth[flipped] + 1 + rng.integers(0, truth.max(), n)) % (truth.max() + 1)
    return noisy, flipped


def reference_ranking(features: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """cleanlab's documented default: out-of-fold LogisticRegression, then find_label_issues."""
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    proba = cross_val_predict(LogisticRegression(max_iter=1000), features, noisy,
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
    return find_label_issues(noisy, proba, return_indices_ranked_by="self_confidence")


def test_planted_flips_rank_at_the_top_as_well_as_the_reference():
    features, truth = blobs(30)
    noisy, flipped = plant(truth, 6)
    assert choose_method(noisy) == "graph+probe"
    order, scores, suggested, flagged, odds, route = review_labels(features, noisy, seed=0)
    assert route == "graph+probe"
    assert sorted(order) == list(range(len(truth)))
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.all(np.diff(scores[order]) <= 1e-12)  # most suspicious first
    ours = len(np.intersect1d(order[:8], flipped))
    assert ours >= 5, (order[:8], flipped)
    assert ours >= len(np.intersect1d(reference_ranking(features, noisy)[:8], flipped))
    top = order[:8][np.isin(order[:8], flipped)]
    assert np.mean(suggested[top] == truth[top]) >= 0.8  # and it says what they should be
    assert flagged[flipped].sum() >= 5 and flagged.sum() - flagged[flipped].sum() <= 2  # listed: the flips
    assert np.all(odds[flagged] >= 5) and np.all(suggested[flagged] != noisy[flagged])
    again = review_labels(features, noisy, seed=0)
    assert np.array_equal(again.order, order)  # deterministic


def test_few_labels_use_the_graph_and_still_find_the_flip():
    features, truth = blobs(3, classes=3, spread=0.5, seed=3)
    noisy = truth.copy()
    noisy[0] = 1  # truly class 0: class 0 keeps 2 labels, class 1 has 4
    assert choose_method(noisy) == "graph"
    found = review_labels(features, noisy)
    assert found.route == "graph" and found.order[0] == 0 and found.suggested[0] == 0
    assert found.scores[0] > 0.9 and list(np.flatnonzero(found.flagged)) == [0]


def test_features_that_cannot_tell_the_classes_apart_flag_nothing():
    """Noise features: the calibration makes the probabilities flat, so no label clears the margin
    (the first version listed every label whose nearest labels happened to be of another class)."""
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(4), 10)
    found = review_labels(rng.normal(size=(40, 16)), labels, unlabelled=rng.normal(size=(200, 16)))
    assert found.flagged.sum() == 0, found.odds
    assert np.all(found.odds < 5)


def test_single_label_class_is_not_checked_and_too_few_labels_say_what_is_needed():
    features, truth = blobs(4, classes=3, seed=2)
    labels = np.concatenate([truth, [3]])
    features = np.vstack([features, features[:1] + 5])
    order, scores, suggested, flagged, _, _ = review_labels(features, labels)
    assert np.isnan(scores[-1]) and order[-1] == len(labels) - 1 and suggested[-1] == 3 and not flagged[-1]
    assert not np.isnan(scores[:-1]).any()
    assert unchecked_classes({"cat": 4, "dog": 1, "fox": 0}) == [
        "Too few labels in dog to check it (1 label): give it 1 more and check again."]
    message = too_few_labels({"cat": 2, "dog": 1})
    assert "at least 2 labels to each of at least 2 classes" in message and "3 labels in all" in message
    assert too_few_labels([2, 2]) is None
    with pytest.raises(ValueError, match="Too few labels"):
        review_labels(features[:3], np.array([0, 0, 1]))


# -- a real workspace -----------------------------------------------------------------------------
@pytest.fixture
def workspace(tmp_path):
    """45 PNG files in three colour classes, ingested; the pixel start only (fast)."""
    return colour_workspace(tmp_path, starts=("pixels",))


def give_labels(ws, wrong: dict[str, str]) -> dict[str, int]:
    """Every image labelled with its colour, except `wrong` ({file: class})."""
    by_source = {r["source"]: r["id"] for r in ws.store.items()}
    for source, item in by_source.items():
        name = wrong.get(source, source.removesuffix(".png").rstrip("0123456789"))
        ws.store.set_labels([item], ws.store.class_id(name, create=True))
    return by_source


def test_review_cli_lists_the_planted_wrong_labels_first(workspace, capsys):
    from sslapp.curate.read import KEPT_SETTING, REVIEW_SETTING

    ws = workspace
    wrong = {"red3.png": "blue", "green7.png": "red"}
    by_source = give_labels(ws, wrong)
    out = sslapp_here(capsys, "review", str(ws.root), "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 45 and set(rows[0]) == {"item", "path", "label", "suggested", "score", "odds", "flagged"}
    assert [r["path"] for r in rows if r["flagged"]] == [r["path"] for r in rows[:2]]  # the two, and only them
    assert {r["path"] for r in rows[:2]} == set(wrong), rows[:4]
    top = {r["path"]: r for r in rows[:2]}
    assert top["red3.png"]["label"] == "blue" and top["red3.png"]["suggested"] == "red"
    assert top["green7.png"]["suggested"] == "green" and top["red3.png"]["item"] == by_source["red3.png"]
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] and scores[0] <= 1
    assert scores[1] > 0.5 > scores[2]  # the two wrong labels stand apart
    assert "checked 45 labels with pixels (PCA) (graph+probe): 2 may be wrong" in out.stderr
    stored = ws.store.get_setting(REVIEW_SETTING)
    assert stored["rows"] == rows and stored["n_labels"] == 45 and stored["route"] == "graph+probe"
    # a label the person confirmed is left out next time; --top keeps the first N
    ws.store.set_setting(KEPT_SETTING, {str(by_source["red3.png"]): "blue"})
    out = sslapp_here(capsys, "review", str(ws.root), "--json", "--top", "3")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 3 and rows[0]["path"] == "green7.png" and "red3.png" not in {r["path"] for r in rows}
    assert "1 label you confirmed earlier left out" in out.stderr
    out = sslapp_here(capsys, "review", str(ws.root), "--top", "2")  # text: one line per label
    assert out.returncode == 0 and "red -> green  green7.png" in out.stdout and "(fits)" in out.stdout


def test_review_cli_says_how_many_labels_are_needed(workspace):
    ws = workspace
    by_source = {r["source"]: r["id"] for r in ws.store.items()}
    ws.store.set_labels([by_source["red0.png"], by_source["red1.png"]], ws.store.class_id("red", create=True))
    ws.store.set_labels([by_source["blue0.png"]], ws.store.class_id("blue", create=True))
    out = sslapp("review", str(ws.root), "--json")
    assert out.returncode == 1 and out.stdout == ""
    assert "at least 2 labels to each of at least 2 classes" in out.stderr and "3 labels in all" in out.stderr
    assert ws.store.jobs(kind="review") == []  # refused before any job was queued
    out = sslapp("review", str(ws.root), "--top", "0")
    assert out.returncode == 2 and "--top must be at least 1" in out.stderr
