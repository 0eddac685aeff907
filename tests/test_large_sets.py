"""The paths large workspaces take (issue 23): NN-descent on a sampled PCA for kNN graphs and near-duplicate
candidates, the sampled PCA itself, and TypiClust on a sample. Small sets with the thresholds lowered run
the same code; one file, so NN-descent compiles once (10 s) in one test process."""

from __future__ import annotations

import numpy as np
import pytest

from sslapp.curate.duplicates import duplicate_pairs
from sslapp.estimators.neighbours import approximate_knn, sampled_pca
from sslapp.estimators.poisson import poisson_distribution
from sslapp.estimators.propagate import knn_graph
from sslapp.select.typiclust import TypiClustStrategy, sample_rows
from sslapp.vectors import l2_normalize


def blobs(n: int = 1200, dim: int = 64, centres: int = 6, spread: float = 0.35, seed: int = 0):
    rng = np.random.default_rng(seed)
    middle = rng.normal(size=(centres, dim))
    y = np.arange(n) % centres
    return (middle[y] + spread * rng.normal(size=(n, dim))).astype(np.float32), y


def exact_neighbours(x: np.ndarray, k: int) -> np.ndarray:
    unit = l2_normalize(x)
    return np.argsort(-(unit @ unit.T), axis=1, kind="stable")[:, :k]


def test_nn_descent_finds_the_exact_neighbours_itself_first_with_unit_vector_distances():
    x, _ = blobs()
    idx, dist = approximate_knn(x, 10)
    assert idx.shape == dist.shape == (len(x), 10)
    assert (idx[:, 0] == np.arange(len(x))).all() and np.allclose(dist[:, 0], 0, atol=1e-3)
    exact = exact_neighbours(x, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, exact, strict=True)])
    assert recall > 0.95, recall
    unit = l2_normalize(x)
    want = np.linalg.norm(unit[:, None, :] - unit[idx], axis=2)  # the distances an exact search reports
    assert np.abs(dist - want).max() < 1e-3
    assert (np.diff(dist, axis=1) >= -1e-6).all()  # nearest first


def test_sampled_pca_spans_the_full_pcas_directions():
    from sklearn.decomposition import PCA

    x, _ = blobs(n=3000, dim=40)
    got = sampled_pca(x, dim=5, fit_rows=800, chunk=700)
    assert got.shape == (3000, 5) and got.dtype == np.float32
    full = PCA(n_components=5, random_state=0).fit_transform(l2_normalize(x, dtype=np.float32))
    # same subspace: each full component is (almost) a combination of the sampled ones
    coef, *_ = np.linalg.lstsq(got, full - full.mean(0), rcond=None)
    explained = 1 - ((got @ coef - (full - full.mean(0))) ** 2).sum(0) / ((full - full.mean(0)) ** 2).sum(0)
    assert explained.min() > 0.97, explained


def test_an_approximate_graph_propagates_labels_as_the_exact_one_does():
    x, y = blobs(n=1500, spread=0.6)
    labelled = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(6)])
    exact = knn_graph(x)
    approximate = knn_graph(x, exact_max=1000)
    assert approximate.features.shape == (1500, 50) and exact.features.shape == (1500, 64)
    got = [poisson_distribution(g.weights, labelled, y[labelled], 6).argmax(1) for g in (exact, approximate)]
    assert (got[0] == got[1]).mean() > 0.97
    assert (got[1] == y).mean() > 0.9


def test_near_duplicate_candidates_from_nn_descent_find_the_planted_copies():
    rng = np.random.default_rng(1)
    n, copies = 1500, 40
    vectors, _ = blobs(n=n, dim=32)
    thumbs = rng.uniform(0, 255, (n, 64)).astype(np.float32)
    hashes = rng.integers(0, 2**63, (n, 2), dtype=np.int64).astype(np.uint64)
    originals = rng.choice(n - copies, copies, replace=False)
    copy_rows = np.arange(n - copies, n)
    vectors[copy_rows] = vectors[originals] + 0.01 * rng.normal(size=(copies, 32))
    thumbs[copy_rows] = thumbs[originals] + rng.normal(0, 2, (copies, 64))
    hashes[copy_rows] = hashes[originals] ^ np.uint64(0b101)  # two bits differ
    unit = l2_normalize(vectors, dtype=np.float32)
    exact = duplicate_pairs(unit, hashes, thumbs)
    approximate = duplicate_pairs(unit, hashes, thumbs, exact_max=1000)
    planted = {(int(min(a, b)), int(max(a, b))) for a, b in zip(originals, copy_rows, strict=True)}
    assert {tuple(p) for p in exact.tolist()} == planted
    assert {tuple(p) for p in approximate.tolist()} == planted


def test_sample_rows_keeps_every_labelled_row_and_samples_candidates():
    labelled = np.array([5, 900, 77])
    candidates = np.setdiff1d(np.arange(1000), labelled)
    assert np.array_equal(sample_rows(1000, labelled, candidates, 1000, seed=0), np.arange(1000))
    rows = sample_rows(1000, labelled, candidates, 200, seed=0)
    assert len(rows) == 200 and np.all(np.diff(rows) > 0) and set(labelled) <= set(rows.tolist())
    assert np.array_equal(rows, sample_rows(1000, labelled, candidates, 200, seed=0))  # seeded


@pytest.mark.parametrize("max_items", [400, 10_000])
def test_typiclust_on_a_sample_picks_typical_candidates_of_uncovered_groups(max_items):
    x, y = blobs(n=1200, centres=6, spread=0.3)
    x = l2_normalize(x, dtype=np.float32)
    labelled = np.flatnonzero(y == 0)[:2]
    candidates = np.setdiff1d(np.arange(len(x)), labelled)
    strategy = TypiClustStrategy(seed=0, max_items=max_items)
    strategy.noun, strategy.plural = "image", "images"
    picks = strategy.query(x, labelled, np.zeros(2, np.int64), 5, candidates=candidates)
    rows = [p.index for p in picks]
    assert len(set(rows)) == 5 and set(rows) <= set(candidates.tolist())
    assert set(y[rows].tolist()) == {1, 2, 3, 4, 5}  # one from each group no label covers
    sampled = max_items < len(x)
    assert all(("about " in p.reason) == sampled for p in picks), [p.reason for p in picks]
