"""Embedding job, map and clusters on a few hundred real ingested images (one UMAP compile)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from embed_helpers import make_workspace
from sklearn.metrics import adjusted_rand_score

from sslapp.embed.clusters import cluster, hdbscan, kmeans
from sslapp.embed.embed import choose_model, load_npz, provisional_features
from sslapp.embed.maps import load_map, map_status
from sslapp.embed.umap_map import fit_map


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


def test_embed_job_provisional_then_encoder(tmp_path):
    """The real job end to end (UMAP path): files, artifacts, clusters; then a newer encoder makes it stale."""
    from sslapp.cli.common import run_job_in_foreground
    from sslapp.ssl.encoder import Encoder, EncoderConfig, save_encoder

    ws, truth = make_workspace(tmp_path, per_class=40)
    assert choose_model(ws).source == "provisional"
    job = run_job_in_foreground(ws, "embed", {})
    assert job["status"] == "done", job["error"]
    r = job["result"]
    assert r["provisional"] and r["source"] == "provisional" and r["layout"] == "umap" and r["n_items"] == 120
    emb = ws.store.latest_artifact("embeddings")
    assert emb["meta"]["source"] == "provisional" and emb["meta"]["n_items"] == 120
    data = load_npz(ws.root / emb["path"])
    assert data["features"].shape[0] == 120 and set(data["item_ids"]) == {i for i, _ in ws.store.item_ids_and_cache_index()}
    m = load_map(ws)
    assert m.meta["embeddings_artifact_id"] == emb["id"] and m.meta["provisional"] is True
    assert m.xy.shape == (120, 2) and np.isfinite(m.xy).all()
    y = [truth[ws.store.item(int(i))["source"]] for i in m.item_ids]
    assert m.meta["k"] == 3 and adjusted_rand_score(y, m.cluster) > 0.9
    assert not map_status(ws, m.artifact).stale

    # a trained encoder appears: the map turns stale, and the next job uses the encoder
    enc = Encoder(EncoderConfig(backbone="resnet18-std", input_size=16, train_size=16))
    save_encoder(enc, ws.checkpoints_dir / "enc.safetensors")
    enc_id = ws.store.add_artifact("encoder", "checkpoints/enc.safetensors", {})
    assert any("newer encoder" in s for s in map_status(ws, m.artifact).stale_reasons)
    job = run_job_in_foreground(ws, "embed", {"clusters": "hdbscan"})
    assert job["status"] == "done", job["error"]
    meta = load_map(ws).meta
    assert meta["source"] == "encoder" and meta["encoder_artifact_id"] == enc_id and not meta["provisional"]
    assert meta["method"] == "hdbscan"
    assert load_npz(ws.root / ws.store.latest_artifact("embeddings")["path"])["features"].shape == (120, 512)
    assert len(list(ws.embeddings_dir.glob("map-*.npz"))) == 2  # versioned, the old map is kept


def test_embed_cli_json_and_errors(tmp_path):
    ws, _ = make_workspace(tmp_path, per_class=4)  # 12 items: PCA layout, no UMAP compile in the child
    cmd = [sys.executable, "-m", "sslapp", "embed", str(ws.root), "--json", "--k", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["k"] == 2 and r["n_items"] == 12 and r["layout"] == "pca" and r["provisional"]
    bad = subprocess.run([*cmd[:-2], "--k", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--k" in bad.stderr
    empty = subprocess.run([sys.executable, "-m", "sslapp", "embed", str(tmp_path / "nothing")],
                           capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "not an sslapp workspace" in empty.stderr
