"""Selection strategies on synthetic embeddings: distinct unlabelled picks, reasons, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from sslapp.select import STRATEGIES, select
from sslapp.select.auto import AutoStrategy


def blobs(n_clusters=5, per=40, dim=16, spread=12.0, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, dim)) * spread
    x = np.concatenate([c + rng.normal(size=(per, dim)) for c in centers]).astype(np.float32)
    return x, np.repeat(np.arange(n_clusters), per)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_each_strategy_returns_k_distinct_unlabelled_items(name):
    x, y = blobs()
    labeled = np.array([0, 40, 80, 120, 160, 1, 41, 81])
    skipped = [2, 3, 42, 200 - 1]
    sel = select(name, x, labeled, y[labeled], 7, exclude=skipped, seed=3)
    idx = sel.indices
    assert len(idx) == 7 and len(set(idx)) == 7
    assert not set(idx) & set(labeled.tolist()) and not set(idx) & set(skipped)
    assert all(0 <= i < len(x) for i in idx)
    assert all(s.reason for s in sel.suggestions)
    assert sel.notes == []


def test_typical_picks_take_one_image_per_well_separated_cluster():
    x, y = blobs(n_clusters=6, per=30)
    for strategy in ("typiclust", "auto"):
        sel = select(strategy, x, [], [], 6, seed=0)
        assert sorted(y[sel.indices].tolist()) == list(range(6)), strategy
        assert "most typical of a group of" in sel.suggestions[0].reason


def test_cold_start_picks_cover_every_class_of_an_unbalanced_set():
    """1 pick per class must not land twice in one class and miss another, even when the classes are
    of very different sizes (UMAP-space clusters from 200 images on: `cluster_space`)."""
    from sslapp.select.typiclust import UMAP_MIN_ITEMS

    rng = np.random.default_rng(0)
    sizes = [120, 80, 60, 40, 30, 20, 15, 10]
    centers = rng.normal(size=(len(sizes), 24)) * 10
    x = np.concatenate([c + rng.normal(size=(n, 24)) for c, n in zip(centers, sizes, strict=True)]).astype(np.float32)
    y = np.repeat(np.arange(len(sizes)), sizes)
    assert len(x) >= UMAP_MIN_ITEMS
    for strategy in ("typiclust", "auto"):
        for seed in range(2):
            picks = select(strategy, x, [], [], len(sizes), seed=seed).indices
            assert sorted(y[picks].tolist()) == list(range(len(sizes))), (strategy, seed, y[picks])


def test_typiclust_covers_the_clusters_without_labels_first():
    x, y = blobs(n_clusters=6, per=30)
    labeled = np.array([0, 30, 60])  # clusters 0, 1, 2 labelled
    sel = select("typiclust", x, labeled, y[labeled], 3, seed=0)
    assert sorted(y[sel.indices].tolist()) == [3, 4, 5]


def test_probcover_spreads_over_clusters():
    x, y = blobs(n_clusters=4, per=30)
    sel = select("probcover", x, [], [], 4, seed=0)
    assert len(set(y[sel.indices].tolist())) == 4


def test_margin_reason_names_the_two_closest_classes():
    x, y = blobs(n_clusters=2, per=50, spread=1.0)
    labeled = np.array([0, 1, 50, 51])
    probs = np.tile([[0.9, 0.1]], (len(x), 1))
    probs[77] = [0.49, 0.51]
    sel = select("margin", x, labeled, y[labeled], 1, probs=probs, class_names=["cat", "dog"])
    assert sel.indices == [77]
    assert sel.suggestions[0].reason == "model unsure: 0.51 dog vs 0.49 cat"


def test_entropy_picks_the_flattest_prediction():
    x, _ = blobs(n_clusters=3, per=20)
    probs = np.tile([[0.8, 0.1, 0.1]], (len(x), 1))
    probs[5] = [0.34, 0.33, 0.33]
    sel = select("entropy", x, [0, 20, 40], [0, 1, 2], 1, probs=probs)
    assert sel.indices == [5] and "entropy" in sel.suggestions[0].reason


def test_model_strategies_fit_a_probe_when_no_probs_are_given():
    x, y = blobs(n_clusters=3, per=30)
    labeled = np.array([0, 1, 30, 31, 60, 61])
    for name in ("margin", "entropy", "badge"):
        sel = select(name, x, labeled, y[labeled], 5, seed=1)
        assert sel.strategy == name and "model unsure" in sel.suggestions[0].reason


def test_model_strategies_fall_back_to_typical_picks_with_one_class():
    x, y = blobs()
    sel = select("margin", x, [0, 1], [0, 0], 3)
    assert sel.strategy == "typiclust" and len(sel.indices) == 3
    assert "at least 2 classes" in sel.notes[0]


def test_budget_larger_than_pool_returns_the_whole_pool_with_a_note():
    x, y = blobs(n_clusters=2, per=10)
    labeled = np.arange(15)
    for name in STRATEGIES:
        sel = select(name, x, labeled, y[labeled], 50, exclude=[15], nouns=("image", "images"))
        assert sorted(sel.indices) == [16, 17, 18, 19], name
        assert "only 4 images" in sel.notes[0]
    sel = select("random", x, labeled, y[labeled], 50, exclude=[15], nouns=("text", "texts"))
    assert "only 4 texts" in sel.notes[0]  # the caller says what the rows are


def test_empty_pool_and_bad_arguments():
    x, y = blobs(n_clusters=2, per=5)
    sel = select("random", x, np.arange(10), y, 3)
    assert sel.suggestions == [] and "Nothing left" in sel.notes[0]
    with pytest.raises(ValueError, match="unknown strategy"):
        select("nope", x, [], [], 3)
    with pytest.raises(ValueError, match="at least 1"):
        select("random", x, [], [], 0)
    with pytest.raises(ValueError, match="same length"):
        select("random", x, [0, 1], [0], 3)


def test_auto_switches_from_typical_to_uncertain_picks():
    auto = AutoStrategy(switch=10)  # the phase rule itself; the shipped threshold is measured
    assert auto.phase(np.array([0] * 30)) == "typical"  # one class: no model yet
    assert auto.phase(np.repeat([0, 1], 5)) == "typical"
    assert auto.phase(np.repeat([0, 1], 10)) == "uncertain"
    assert auto.phase(np.repeat([0, 1], 10), n_classes=4) == "typical"  # two classes still unlabelled
    from sslapp.select.auto import SWITCH_LABELS_PER_CLASS

    x, y = blobs(n_clusters=2, per=60)
    k = int(np.ceil(SWITCH_LABELS_PER_CLASS))
    labeled = np.r_[0:k, 60:60 + k]
    sel = select("auto", x, labeled, y[labeled], 4, seed=0)
    assert all("model unsure" in s.reason for s in sel.suggestions)


def test_selection_is_seeded():
    x, y = blobs()
    a = select("badge", x, [0, 40], [0, 1], 5, seed=7).indices
    b = select("badge", x, [0, 40], [0, 1], 5, seed=7).indices
    assert a == b
