"""`sslapp suggest` end to end: real workspace, real images, the real job, JSON out."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_workspace import colour_workspace, sslapp, sslapp_here
from PIL import Image


@pytest.fixture
def workspace(tmp_path):
    """45 tiny images in three colour classes, ingested into a fresh workspace (patch start only)."""
    return colour_workspace(tmp_path, starts=("patches",))


def label(ws, names):
    by_source = {r["source"]: r["id"] for r in ws.store.items()}
    for name in names:
        ws.store.set_labels([by_source[f"{name}.png"]], ws.store.class_id(name.rstrip("0123456789"), create=True))
    return by_source


def test_suggest_json_never_repeats_labelled_or_skipped_items(workspace, capsys):
    ws = workspace
    by_source = label(ws, ["red0", "green0", "blue0", "red1"])
    ws.store.skip_items([by_source["green1.png"]])
    out = sslapp_here(capsys, "suggest", str(ws.root), "--budget", "6", "--strategy", "margin", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 6 and len({r["item_id"] for r in rows}) == 6
    assert set(rows[0]) == {"item_id", "source", "reason", "strategy"}
    assert all(r["strategy"] == "margin" and r["reason"].startswith("model unsure") for r in rows)
    taken = {by_source[s] for s in ("red0.png", "green0.png", "blue0.png", "red1.png", "green1.png")}
    assert not taken & {r["item_id"] for r in rows}
    assert "patch dictionary" in out.stderr  # which embedding, and why, is said
    assert [s["item_id"] for s in ws.store.open_suggestions()] == [r["item_id"] for r in rows]


def test_suggest_uses_the_chosen_embedding_and_extends_it_to_new_images(workspace, tmp_path, capsys):
    from sslapp.features.read import CHOICE_SETTING
    from sslapp.ingest.ingest import ingest

    ws = workspace
    out = sslapp_here(capsys, "suggest", str(ws.root), "--budget", "50", "--strategy", "typiclust", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 45 and "only 45 images" in out.stderr
    choice = ws.store.get_setting(CHOICE_SETTING)
    emb = ws.store.latest_artifact("embeddings")
    assert emb["meta"]["encoder_artifact_id"] == choice["encoder_artifact_id"] and emb["meta"]["n_items"] == 45
    # one more image: its features are added to the cache (not recomputed for all), and it can be suggested
    extra = tmp_path / "more"
    extra.mkdir()
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(extra / "white.png")
    ingest(ws, [str(extra)], base=str(extra), workers=1)
    out = sslapp_here(capsys, "suggest", str(ws.root), "--budget", "46", "--json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == 46
    grown = ws.store.latest_artifact("embeddings")
    assert grown["id"] != emb["id"] and grown["meta"]["n_items"] == 46
    assert not (ws.root / emb["path"]).exists()  # the smaller cache file was replaced


def test_suggest_bad_input(tmp_path, workspace):
    out = sslapp("suggest", str(tmp_path / "nowhere"), "--budget", "3")
    assert out.returncode == 2 and "not an sslapp workspace" in out.stderr
    out = sslapp("suggest", str(workspace.root), "--budget", "0")
    assert out.returncode == 2 and "--budget must be at least 1" in out.stderr


def test_reasons_name_the_cluster_the_map_shows(workspace, capsys):
    """The map's clusters, not the strategy's own finer groups, are what a reason names."""
    from sslapp.maps.read import load_map

    ws = workspace
    assert sslapp_here(capsys, "embed", str(ws.root), "--k", "3").returncode == 0
    m = load_map(ws)
    cluster_of = dict(zip(m.item_ids.tolist(), m.cluster.tolist(), strict=True))
    out = sslapp_here(capsys, "suggest", str(ws.root), "--budget", "4", "--strategy", "typiclust", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 4
    for r in rows:
        assert r["reason"].endswith(f"(map cluster {cluster_of[r['item_id']]})"), r["reason"]
        assert "cluster" not in r["reason"].replace("(map cluster", "")
