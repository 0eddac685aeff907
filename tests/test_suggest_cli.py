"""`sslapp suggest` end to end: real workspace, real images, the real job, JSON out."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

COLOURS = ("red", "green", "blue")


def sslapp(*args):
    return subprocess.run([sys.executable, "-m", "sslapp", *args], capture_output=True, text=True)


def sslapp_here(capsys, *args):
    """The same CLI in this process (torch and scikit-activeml are imported once per test session)."""
    from sslapp.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


@pytest.fixture
def workspace(tmp_path):
    """45 tiny images in three colour classes, ingested into a fresh workspace."""
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    root.mkdir()
    for c, name in enumerate(COLOURS):
        for i in range(15):
            a = (rng.random((20, 20, 3)) * 80).astype(np.uint8)
            a[..., c] += 150
            Image.fromarray(a).save(root / f"{name}{i}.png")
    ws = open_workspace(tmp_path / "ws", cache_size=16)
    ingest(ws, [str(root)], base=str(root), workers=1)
    return ws


def label(ws, names):
    by_source = {r["source"]: r["id"] for r in ws.store.items()}
    for name in names:
        ws.store.set_labels([by_source[f"{name}.png"]], ws.store.class_id(name.rstrip("0123456789"), create=True))
    return by_source


def test_suggest_json_never_repeats_labelled_or_skipped_items(workspace):
    ws = workspace
    by_source = label(ws, ["red0", "green0", "blue0", "red1"])
    ws.store.skip_items([by_source["green1.png"]])
    out = sslapp("suggest", str(ws.root), "--budget", "6", "--strategy", "margin", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 6 and len({r["item_id"] for r in rows}) == 6
    assert set(rows[0]) == {"item_id", "source", "reason", "strategy"}
    assert all(r["strategy"] == "margin" and r["reason"].startswith("model unsure") for r in rows)
    taken = {by_source[s] for s in ("red0.png", "green0.png", "blue0.png", "red1.png", "green1.png")}
    assert not taken & {r["item_id"] for r in rows}
    assert "provisional" in out.stderr  # no embeddings yet: said so, and still suggested
    assert [s["item_id"] for s in ws.store.open_suggestions()] == [r["item_id"] for r in rows]


def test_suggest_uses_the_embeddings_artifact_and_flags_stale_or_missing(workspace, capsys):
    from sslapp.embed.embed import ModelChoice, save_embeddings

    ws = workspace
    ids = [r["id"] for r in ws.store.items()]
    rng = np.random.default_rng(1)
    # A (fake) trained encoder's embeddings covering all but the last image.
    enc = ws.store.add_artifact("encoder", "checkpoints/enc.safetensors", {})
    save_embeddings(ws, 1, ids[:-1], rng.normal(size=(len(ids) - 1, 8)).astype(np.float32),
                    ModelChoice("encoder", ws.store.artifacts("encoder")[0]))
    out = sslapp_here(capsys, "suggest", str(ws.root), "--budget", "50", "--strategy", "typiclust", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == len(ids) - 1 and ids[-1] not in {r["item_id"] for r in rows}
    assert "1 images were added after the last embedding" in out.stderr
    assert "only 44 images" in out.stderr
    assert "older model" not in out.stderr
    ws.store.add_artifact("encoder", "checkpoints/enc2.safetensors", {})
    out = sslapp_here(capsys, "suggest", str(ws.root), "--budget", "3")
    assert out.returncode == 0, out.stderr
    assert f"older model (encoder {enc}" in out.stderr
    assert len(out.stdout.strip().splitlines()) == 3 and "most typical of cluster" in out.stdout


def test_suggest_bad_input(tmp_path, workspace):
    out = sslapp("suggest", str(tmp_path / "nowhere"), "--budget", "3")
    assert out.returncode == 2 and "not an sslapp workspace" in out.stderr
    out = sslapp("suggest", str(workspace.root), "--budget", "0")
    assert out.returncode == 2 and "--budget must be at least 1" in out.stderr
