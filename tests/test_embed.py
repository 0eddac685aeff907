"""Embedding job, map and clusters on a few hundred real ingested images (one UMAP compile)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from embed_helpers import make_workspace
from sklearn.metrics import adjusted_rand_score

from sslapp.features.extract import load_npz
from sslapp.maps.clusters import cluster, hdbscan, kmeans
from sslapp.maps.read import load_map, map_status
from sslapp.maps.umap_map import fit_map
from sslapp.modalities.image.quick import provisional_features


def blobs(n_per: int = 60, k: int = 4, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 6
    x = np.concatenate([c + rng.normal(size=(n_per, dim)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(k), n_per)


def test_kmeans_picks_k_and_recovers_blobs():
    x, y = blobs()
    c = kmeans(x)
    assert c.k == 4 and c.scores
    assert adjusted_rand_score(y, c.labels) > 0.95
    assert kmeans(x, k=6).k == 6  # the user's k wins
    assert list(np.bincount(c.labels)) == sorted(np.bincount(c.labels), reverse=True)  # largest first


def test_automatic_k_finds_the_kinds_inside_two_far_apart_groups():
    """Two far-apart groups of three kinds each: silhouette said 2 (the old rule, and what the issue
    saw on cifar10); the kNN graph's eigengap says 6, and k-means on the map recovers them."""
    rng = np.random.default_rng(1)
    supers = rng.normal(size=(2, 32)) * 40
    centres = np.concatenate([s + rng.normal(size=(3, 32)) * 6 for s in supers])
    x = np.concatenate([c + rng.normal(size=(80, 32)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(6), 80)
    from sslapp.maps.clusters import _reduce, choose_k

    assert choose_k(_reduce(x))[0] == 2  # the old rule
    c = kmeans(x)
    assert c.k == 6 and max(c.scores, key=c.scores.get) == 6
    xy, _ = fit_map(x)
    assert adjusted_rand_score(y, kmeans(x, xy=xy).labels) > 0.9


def test_automatic_k_reaches_the_dozens_texts_come_in():
    """45 kinds, as intents and topics come (banking77 has 77): the graph's eigengap finds them all, past the
    old cap of 30 clusters."""
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(45, 32)) * 8
    x = np.concatenate([c + rng.normal(size=(12, 32)) for c in centres]).astype(np.float32)
    assert kmeans(x).k == 45


def test_small_inputs_do_not_crash():
    assert fit_map(np.zeros((0, 8)))[0].shape == (0, 2)
    xy, method = fit_map(np.random.default_rng(0).normal(size=(5, 8)))
    assert xy.shape == (5, 2) and method == "pca"
    assert fit_map(np.ones((1, 3)))[0].shape == (1, 2)
    assert kmeans(np.ones((2, 3))).k == 1
    assert hdbscan(np.zeros((3, 2))).labels.shape == (3,)
    with pytest.raises(ValueError, match="hdbscan"):
        cluster(np.ones((4, 2)), np.ones((4, 2)), method="dbscan")


def test_provisional_features_separate_colours(tmp_path):
    from sslapp.ingest.cache import read_cache

    ws, truth = make_workspace(tmp_path, per_class=10)
    pairs = ws.store.item_ids_and_cache_index()
    rows = np.array([p[1] for p in pairs])[::-1].copy()  # any row order must work
    f = provisional_features(read_cache(ws), rows)
    assert f.shape == (30, 32) and np.isfinite(f).all()
    y = [truth[ws.store.item(p[0])["source"]] for p in pairs][::-1]
    assert adjusted_rand_score(y, kmeans(f, k=3).labels) > 0.9


def test_embed_job_pixels_first_then_the_chosen_encoder(tmp_path):
    """The real job end to end (UMAP path): a pixel map first, then the chosen encoder's map; a newer
    encoder makes it stale, and once labels measure it better, the next job uses it."""
    from sslapp.cli.common import run_job_in_foreground
    from sslapp.features.read import CHOICE_SETTING
    from sslapp.models.encoder import Encoder, EncoderConfig, save_encoder

    ws, truth = make_workspace(tmp_path, per_class=40)
    # the two starts the choice weighs first on colour images; the patch dictionary's own fit and cache
    # are test_features.test_patches_start_is_made_once_with_its_features_cached's
    ws.store.set_setting("features.starts", ["imagenet", "pixels"])
    job = run_job_in_foreground(ws, "embed", {})
    assert job["status"] == "done", job["error"]
    r = job["result"]
    assert not r["provisional"] and r["source"] == "encoder" and r["layout"] == "umap" and r["n_items"] == 120
    maps = ws.store.artifacts("map")
    assert [m["meta"]["provisional"] for m in maps] == [False, True]  # newest first: pixels came first
    starts = {a["meta"]["start"]: a for a in ws.store.artifacts("encoder")}
    # colour images and no labels yet: the ImageNet start, by the measured prior, is the only one made and
    # embedded (the pixel PCA waits for labels that can measure it)
    assert set(starts) == {"imagenet"}
    chosen = starts["imagenet"]
    assert r["encoder_artifact_id"] == chosen["id"]
    embs = {a["meta"]["encoder_artifact_id"]: a for a in ws.store.artifacts("embeddings")}
    assert set(embs) == {chosen["id"]}
    data = load_npz(ws.root / embs[chosen["id"]]["path"])
    assert data["features"].shape == (120, 1280)
    assert set(data["item_ids"]) == {i for i, _ in ws.store.item_ids_and_cache_index()}
    m = load_map(ws)
    assert m.meta["encoder_artifact_id"] == chosen["id"]
    assert m.meta["embedding_name"] == "ImageNet EfficientNet-Lite0 (frozen)"
    assert m.xy.shape == (120, 2) and np.isfinite(m.xy).all()
    y = [truth[ws.store.item(int(i))["source"]] for i in m.item_ids]
    assert m.meta["k"] == 3 and adjusted_rand_score(y, m.cluster) > 0.9, adjusted_rand_score(y, m.cluster)
    assert not map_status(ws, m.artifact).stale
    assert ws.store.get_setting(CHOICE_SETTING)["encoder_artifact_id"] == chosen["id"]

    # a trained encoder appears: the map says so; with no labels to measure it, the start stays in use
    enc = Encoder(EncoderConfig(backbone="resnet18-std", input_size=16, train_size=16))
    save_encoder(enc, ws.checkpoints_dir / "enc.safetensors")
    enc_id = ws.store.add_artifact("encoder", "checkpoints/enc.safetensors", {"method": "simclr"}, run_id=None)
    assert any("newer encoder" in s for s in map_status(ws, m.artifact).stale_reasons)
    job = run_job_in_foreground(ws, "embed", {"clusters": "hdbscan"})
    assert job["status"] == "done", job["error"]
    meta = load_map(ws).meta
    assert meta["encoder_artifact_id"] == chosen["id"] and meta["method"] == "hdbscan"
    choice = ws.store.get_setting(CHOICE_SETTING)
    assert {c["encoder_artifact_id"] for c in choice["candidates"]} == {*(a["id"] for a in starts.values()), enc_id}
    assert "nothing can be measured" in choice["reason"]
    # the user pins the new encoder: it is used, and its features are cached at its width
    ws.store.set_setting("features.pinned", enc_id)
    job = run_job_in_foreground(ws, "embed", {})
    assert load_map(ws).meta["encoder_artifact_id"] == enc_id
    assert load_npz(ws.root / ws.store.latest_artifact("embeddings")["path"])["features"].shape == (120, 512)
    assert len(list(ws.embeddings_dir.glob("map-*.npz"))) == 4  # versioned: every map is kept

    # labels that can measure: the start that waited (pixel PCA) is made, and every candidate is scored
    ws.store.set_setting("features.pinned", None)
    for name in sorted(set(truth.values())):
        mine = [i for i, _ in ws.store.item_ids_and_cache_index() if truth[ws.store.item(i)["source"]] == name]
        ws.store.set_labels(mine[:3], ws.store.class_id(name, create=True))
    job = run_job_in_foreground(ws, "embed", {})
    assert job["status"] == "done", job["error"]
    assert {a["meta"].get("start") for a in ws.store.artifacts("encoder")} == {"imagenet", "pixels", None}
    choice = ws.store.get_setting(CHOICE_SETTING)
    assert len(choice["candidates"]) == 3 and all(c["score"] is not None for c in choice["candidates"]), choice
    assert "best on your 9 labels" in choice["reason"]


def test_embed_cli_json_and_errors(tmp_path, capsys):
    """`sslapp embed` in this process (tests/test_cli_basics.py runs the entry point as its own process)."""
    from sslapp.cli import main

    ws, _ = make_workspace(tmp_path, per_class=4)  # 12 items: PCA layout, no UMAP compile
    ws.store.set_setting("features.starts", ["pixels"])  # which start wins is the test above's
    assert main(["embed", str(ws.root), "--json", "--k", "2"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["k"] == 2 and r["n_items"] == 12 and r["layout"] == "pca" and not r["provisional"]
    assert r["embedding_name"]  # the map says which embedding it shows
    assert main(["embed", str(ws.root), "--json", "--k", "0"]) == 2
    assert "--k" in capsys.readouterr().err
    assert main(["embed", str(tmp_path / "nothing")]) == 2
    assert "not an sslapp workspace" in capsys.readouterr().err
