"""Poisson learning on real kNN graphs of tiny synthetic point sets, against a dense reference solve."""

from __future__ import annotations

import numpy as np
import pytest

from sslapp.estimators.api import choose_propagation, resolve_propagation, train_on_embeddings
from sslapp.estimators.poisson import poisson_distribution, poisson_scores
from sslapp.estimators.propagate import KnnGraph, knn_graph, pseudo_labels


def blobs(n_classes: int = 4, per_class: int = 60, sep: float = 3.0, dim: int = 8, seed: int = 0):
    """Gaussian blobs on the axes: `sep` 3 overlaps a little (one connected kNN graph), 10 does not."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    return np.eye(dim)[:n_classes][y] * sep + rng.normal(size=(len(y), dim)), y


def one_per_class(y: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([rng.choice(np.flatnonzero(y == c)) for c in np.unique(y)])


def dense_poisson(weights, labeled_idx: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Reference: u = D^-1/2 pinv(I - D^-1/2 W D^-1/2) D^-1/2 b, with b the mean-shifted one-hot sources
    (Calder et al. 2020, eq. 7; graphlearning drops self-loops first)."""
    W = weights.toarray()
    np.fill_diagonal(W, 0.0)
    d = W.sum(axis=1)
    L = np.eye(len(W)) - W / np.sqrt(d[:, None] * d[None, :])
    onehot = np.eye(k)[labels]
    b = np.zeros((len(W), k))
    b[labeled_idx] = onehot - onehot.mean(axis=0)
    return np.linalg.pinv(L) @ (b / np.sqrt(d)[:, None]) / np.sqrt(d)[:, None]


def test_knn_graph_holds_self_and_symmetric_gaussian_weights():
    X, _ = blobs(3, 20)
    graph = knn_graph(X, n_neighbors=5)
    assert isinstance(graph, KnnGraph)
    assert graph.indices.shape == (60, 5) and graph.distances.shape == (60, 5)
    assert np.array_equal(graph.indices[:, 0], np.arange(60))  # each row's nearest is itself
    assert np.allclose(np.linalg.norm(graph.features, axis=1), 1.0)  # L2-normalised
    assert np.array_equal(np.asarray(graph.connectivity.sum(axis=1)).ravel(), np.full(60, 5.0))
    W = graph.weights
    assert abs(W - W.T).max() < 1e-12 and W.min() >= 0 and W.nnz >= 60 * 4


def test_poisson_scores_match_a_dense_solve_and_graphlearning():
    import graphlearning as gl

    X, y = blobs(3, 40, dim=6)
    graph = knn_graph(X)
    idx = np.array([0, 1, 40, 80, 81, 82])
    u = poisson_scores(graph.weights, idx, y[idx], 3)
    assert u.shape == (120, 3) and np.isfinite(u).all()
    ref = dense_poisson(graph.weights, idx, y[idx], 3)
    assert np.abs(u - ref).max() < 1e-2 * np.abs(ref).max()  # graphlearning's CG stops at residual 1e-3
    assert np.allclose(u, gl.ssl.poisson(graph.weights).fit(idx, y[idx]))
    assert (u.argmax(axis=1) == y).mean() > 0.9


def test_labels_that_are_not_0_to_k_minus_1_keep_their_columns():
    """Classes [2, 5, 7] of 8: the same scores as contiguous [0, 1, 2], the other columns -inf."""
    X, y = blobs(3, 40, dim=6)
    graph = knn_graph(X)
    idx = one_per_class(y)
    contiguous = poisson_scores(graph.weights, idx, y[idx], 3)
    names = np.array([2, 5, 7])
    u = poisson_scores(graph.weights, idx, names[y[idx]], 8)
    assert u.shape == (120, 8)
    assert np.allclose(u[:, names], contiguous)
    others = np.setdiff1d(np.arange(8), names)
    assert np.isneginf(u[:, others]).all()
    dist = poisson_distribution(graph.weights, idx, names[y[idx]], 8)
    assert np.allclose(dist.sum(axis=1), 1.0) and (dist[:, others] == 0).all()
    assert set(np.unique(dist.argmax(axis=1))) == set(names)


def test_one_class_labelled_gives_that_class_everywhere():
    X, _ = blobs(2, 20)
    graph = knn_graph(X)
    u = poisson_scores(graph.weights, np.array([0, 1]), np.array([3, 3]), 5)
    assert (u.argmax(axis=1) == 3).all() and np.isneginf(np.delete(u, 3, axis=1)).all()


@pytest.mark.parametrize("sep", [3.0, 10.0])  # one connected graph; one component per blob
def test_one_label_per_class_is_enough(sep):
    X, y = blobs(4, 60, sep=sep)
    names = np.array([2, 5, 7, 0])  # not 0..k-1, and classes 1, 3, 4, 6 have no label at all
    idx = one_per_class(y, seed=1)
    pseudo = pseudo_labels("poisson", X, idx, names[y[idx]], 8)
    assert len(pseudo) == len(X) - len(idx)  # every unlabelled row gets a pseudo-label
    assert (pseudo.labels == names[y[pseudo.index]]).mean() > 0.9
    proba = train_on_embeddings(X, idx, names[y[idx]], propagate="auto", n_classes=8)
    assert proba.shape == (240, 8)
    pred = proba.argmax(axis=1)
    assert (pred == names[y]).mean() > 0.9
    assert set(np.unique(pred)) == set(names)  # every class predicted, no unlabelled class ever wins


def test_a_single_label_class_beside_a_well_labelled_one():
    """Poisson's mean-shifted sources keep a 1-label class alive next to a 6-label one."""
    X, y = blobs(3, 60)
    idx = np.concatenate([np.flatnonzero(y == 0)[:6], np.flatnonzero(y == 1)[:1], np.flatnonzero(y == 2)[:2]])
    pred = train_on_embeddings(X, idx, y[idx], propagate="poisson").argmax(axis=1)
    assert (pred == y).mean() > 0.9
    assert np.bincount(pred, minlength=3).min() > 40


def test_an_isolated_labelled_clump_does_not_swamp_the_rest():
    """12 near-duplicate images far from the rest (their own kNN component), one of them labelled: the
    three blobs must still be classified as well as without the clump (0.97 there). Solved as one system,
    conjugate gradients diverged on the inconsistent sources (|u| ~ 1e19) and this fell to 0.23."""
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 80)
    X = np.eye(8)[:3][y] * 3.0 + rng.normal(size=(240, 8))
    clump = -3.0 * np.ones(8) + 0.01 * rng.normal(size=(12, 8))
    X, y = np.vstack([X, clump]), np.concatenate([y, np.full(12, 3)])
    idx = np.array([0, 80, 160, 161, 162, 240])
    alone = train_on_embeddings(X[:240], idx[:5], y[idx[:5]], propagate="poisson", n_classes=4)
    assert (alone.argmax(axis=1) == y[:240]).mean() > 0.9  # the blobs alone are easy
    pred = train_on_embeddings(X, idx, y[idx], propagate="poisson", n_classes=4).argmax(axis=1)
    assert (pred[:240] == y[:240]).mean() > 0.9


def test_components_without_labels_or_with_one_class():
    """Per connected component: one labelled class takes its component; no labels, a uniform guess."""
    rng = np.random.default_rng(0)
    X = np.concatenate([np.eye(8)[k] * 5 + rng.normal(size=(20, 8)) * 0.2 for k in range(4)])
    y = np.repeat(np.arange(4), 20)
    graph = knn_graph(X)
    from scipy.sparse.csgraph import connected_components

    assert connected_components(graph.weights)[0] == 4
    idx = np.array([0, 1, 20, 40])  # blob 0: class 0 twice; blob 1: class 1; blob 2: class 6; blob 3: none
    labels = np.array([0, 0, 1, 6])
    dist = poisson_distribution(graph.weights, idx, labels, 7)
    assert np.allclose(dist.sum(axis=1), 1.0)
    assert (dist[y == 0].argmax(axis=1) == 0).all() and (dist[y == 1].argmax(axis=1) == 1).all()
    assert (dist[y == 2].argmax(axis=1) == 6).all()
    assert np.allclose(dist[y == 3][:, [0, 1, 6]], 1 / 3) and (dist[y == 3][:, [2, 3, 4, 5]] == 0).all()


def test_auto_propagation_is_poisson_with_few_labels():
    X, y = blobs(3, 30)
    idx = one_per_class(y)
    method, why = resolve_propagation("auto", X, idx, y[idx], 3)
    assert method == "poisson" and "few labels" in why
    assert resolve_propagation("off", X, idx, y[idx], 3)[0] is None
    assert resolve_propagation("spreading", X, idx, y[idx], 3) == ("spreading", "as asked")
    every = np.arange(len(X))  # nothing unlabelled to propagate to
    assert resolve_propagation("auto", X, every, y, 3)[0] is None
    assert choose_propagation(True, 3, 3, 90) == "poisson"
    assert choose_propagation("auto", 3, 1, 90) is None  # one class: nothing to tell apart
    with pytest.raises(ValueError, match="propagate must be"):
        choose_propagation("laplace", 3, 3, 90)
    many = np.concatenate([np.flatnonzero(y == c)[:4] for c in range(3)])  # 4 per class: cross-validated
    method, why = resolve_propagation("auto", X, many, y[many], 3)
    assert method in ("poisson", "spreading", None) and why.startswith("cross-validation")
