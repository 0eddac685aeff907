"""More like this (`sslapp.curate.similar`, `sslapp similar`): real workspace, real PNG files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

COLOURS = ("red", "green", "blue")


def sslapp_here(capsys, *args):
    from sslapp.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """30 tiny images in three colour classes, ingested, with the pixel-PCA start (fast)."""
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    tmp = tmp_path_factory.mktemp("similar")
    rng = np.random.default_rng(0)
    root = tmp / "images"
    (root / "sub").mkdir(parents=True)
    for c, name in enumerate(COLOURS):
        for i in range(10):
            a = (rng.random((20, 20, 3)) * 90).astype(np.uint8)
            a[..., c] += 150
            Image.fromarray(a).save(root / ("sub" if i == 0 else "") / f"{name}{i}.png")
    ws = open_workspace(tmp / "ws", cache_size=16)
    ingest(ws, [str(root)], base=str(root), workers=1)
    ws.store.set_setting("features.starts", ["pixels"])
    return ws


def reference(features: np.ndarray, query: int, k: int) -> list[int]:
    """Brute force the obvious way: cosine similarity to every other row, highest first, ties by row."""
    x = features / np.linalg.norm(features, axis=1, keepdims=True)
    sims = x @ x[query]
    order = sorted((r for r in range(len(x)) if r != query), key=lambda r: (-sims[r], r))
    return order[:k]


def test_nearest_matches_brute_force_in_chunks_and_leaves_the_query_out():
    from sslapp.curate.similar import nearest
    from sslapp.vectors import l2_normalize

    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    x[7] = x[3]  # a tie at distance 0: still listed, the query itself still not
    v = l2_normalize(x, dtype=np.float32)
    rows, dists = nearest(v, np.arange(300), 10, chunk_bytes=4 * 300 * 7)  # 7 queries per chunk
    assert rows.shape == dists.shape == (300, 10)
    for q in range(300):
        assert list(rows[q]) == reference(x, q, 10)
    assert rows[3, 0] == 7 and dists[3, 0] == pytest.approx(0, abs=1e-6)
    assert np.all(np.diff(dists, axis=1) >= 0) and np.all((dists >= 0) & (dists <= 2))
    assert np.allclose(dists, 1 - np.einsum("qd,qkd->qk", v, v[rows]), atol=1e-6)
    one_rows, one_dists = nearest(v, 5, 400)  # a scalar query: 1-D, k clipped to n - 1
    assert one_rows.shape == (299,) and 5 not in one_rows and list(one_rows[:10]) == reference(x, 5, 10)
    with pytest.raises(IndexError):
        nearest(v, [300], 3)


def test_similar_items_nearest_first_by_id_or_path_and_the_cached_index(workspace):
    from sslapp.curate.similar import cached_features, load_index, similar_items
    from sslapp.features.service import current_embedding

    ws = workspace
    by_source = {r["source"]: r["id"] for r in ws.store.items()}
    emb = current_embedding(ws)
    rows = similar_items(ws, by_source["red3.png"], k=8)
    q = int(np.flatnonzero(emb.item_ids == by_source["red3.png"])[0])
    expected = [int(emb.item_ids[r]) for r in reference(emb.features, q, 8)]
    assert [r["item"] for r in rows] == expected
    assert all(set(r) == {"item", "path", "distance"} for r in rows)
    assert [r["path"] for r in rows] == [ws.store.item(i)["source"] for i in expected]
    assert [r["distance"] for r in rows] == sorted(r["distance"] for r in rows)
    assert all("red" in r["path"] for r in rows)  # the colour classes are what pixels see
    assert similar_items(ws, "red3.png", k=8) == rows  # by source path
    assert similar_items(ws, "photos/sub/red0.png", k=3) == similar_items(ws, by_source["sub/red0.png"], k=3)
    # the index is cached beside the features, memory-mapped, and reused
    path = ws.root / "embeddings" / f"index-enc-{emb.artifact['id']}-30.npy"
    index = cached_features(ws)
    assert path.exists() and isinstance(index.vectors, np.memmap)
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1, atol=1e-5)
    stamp = path.stat().st_mtime_ns
    assert load_index(ws).encoder_id == emb.artifact["id"] and path.stat().st_mtime_ns == stamp


def test_cached_features_needs_no_torch(workspace):
    """What the pages call: it must not import torch, and says None when nothing is cached."""
    from sslapp.curate.similar import load_index

    ws = workspace
    load_index(ws)
    item = ws.store.items(limit=1)[0]["id"]
    code = ("import sys, json; from sslapp.workspace import open_workspace; "
            "from sslapp.curate.similar import cached_features, similar_items; "
            f"ws = open_workspace({str(ws.root)!r}); index = cached_features(ws); "
            f"rows = similar_items(ws, {item}, 5, index); print(json.dumps([len(rows), 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [5, False]
    code = ("import sys; import sslapp.curate.similar, sslapp.curate.duplicates; print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_new_images_extend_the_index(workspace, tmp_path):
    from sslapp.curate.similar import cached_features, load_index, similar_items
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws", cache_size=16)
    ingest(ws, [str(workspace.root / "originals")], workers=1)  # the same 30 images, another workspace
    ws.store.set_setting("features.starts", ["pixels"])
    old = load_index(ws)
    extra = tmp_path / "more"
    extra.mkdir()
    Image.fromarray(np.full((20, 20, 3), (230, 40, 40), np.uint8)).save(extra / "new_red.png")
    ingest(ws, [str(extra)], base=str(extra), workers=1)
    assert len(cached_features(ws).item_ids) == 30  # the cache does not know it yet
    new_id = ws.store.find_items_by_source("new_red.png")[0]
    with pytest.raises(ValueError, match="no features"):
        similar_items(ws, new_id, 3, cached_features(ws))
    index = load_index(ws)
    assert len(index.item_ids) == 31 and similar_items(ws, new_id, 3, index)
    files = sorted(p.name for p in (ws.root / "embeddings").glob("index-*.npy"))
    assert files == [f"index-enc-{old.encoder_id}-31.npy"]  # the smaller one was replaced


def test_similar_cli_json_and_errors(workspace, capsys, tmp_path):
    ws = workspace
    out = subprocess.run([sys.executable, "-m", "sslapp", "similar", str(ws.root), "green4.png", "--k", "4", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 4 and all(set(r) == {"item", "path", "distance"} for r in rows)
    assert all("green" in r["path"] for r in rows) and "pixels (PCA)" in out.stderr
    text = sslapp_here(capsys, "similar", str(ws.root), str(rows[0]["item"]), "--k", "2")
    assert text.returncode == 0 and len(text.stdout.strip().splitlines()) == 2
    bad = sslapp_here(capsys, "similar", str(ws.root), "purple9.png")
    assert bad.returncode == 2 and "no image with id or source path 'purple9.png'" in bad.stderr and not bad.stdout
    bad = sslapp_here(capsys, "similar", str(ws.root), "99999", "--json")
    assert bad.returncode == 2 and "99999" in bad.stderr and not bad.stdout
    bad = sslapp_here(capsys, "similar", str(ws.root), "red1.png", "--k", "0")
    assert bad.returncode == 2 and "--k must be" in bad.stderr
    from sslapp.workspace import open_workspace

    empty = open_workspace(tmp_path / "empty")
    bad = sslapp_here(capsys, "similar", str(empty.root), "1")
    assert bad.returncode == 1 and "no items yet" in bad.stderr
