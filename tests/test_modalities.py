"""The item contract: images behind it, a workspace fixed to one modality by its first ingest, and a
fourth kind of item as one small module (here a toy kind of 4-number vectors) with nothing else changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslapp import modalities
from sslapp.ingest.cache import read_cache
from sslapp.ingest.ingest import ingest
from sslapp.modalities import MODALITY_SETTING, BadItem, Decoded, Modality, ModalityError, get_modality
from sslapp.registry import Entry, Registry


def _png(path: Path, color) -> Path:
    Image.new("RGB", (20, 20), color).save(path)
    return path


def test_the_image_modality_keeps_the_canonical_preprocessing():
    image = get_modality("image")
    assert image.reads("a/B.JPG") and not image.reads("notes.txt")
    from io import BytesIO

    buf = BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, "PNG")
    [decoded] = image.decode(buf.getvalue(), 16, {})
    shape, dtype = image.cache_row(16)
    assert decoded.row.shape == shape == (16, 16, 3) and decoded.row.dtype == np.dtype(dtype)
    assert decoded.info == {"width": 40, "height": 30, "format": "PNG", "ext": ".png"}
    assert decoded.preview[:2] == b"\xff\xd8"  # a JPEG thumbnail
    x = image.model_input(decoded.row[None])
    assert x.shape == (1, 3, 16, 16) and x.dtype == np.float32 and abs(float(x[0, 0].mean()) - 200 / 255) < 1e-3
    with pytest.raises(BadItem) as err:
        image.decode(b"just some text", 16, {})
    assert err.value.kind and "image" in str(err.value)
    assert image.preprocessing(16)["steps"][-1].startswith("Divide by 255")


def test_the_first_ingest_fixes_the_workspace_modality(ws, tmp_path, with_toy):
    assert ws.store.get_setting(MODALITY_SETTING) is None
    ingest(ws, [_png(tmp_path / "a.png", "red")])
    assert ws.store.get_setting(MODALITY_SETTING) == "image"
    with pytest.raises(ModalityError, match="holds images"):
        ingest(ws, [_png(tmp_path / "b.png", "blue")], modality="toy")


# -- a fourth modality: one module's worth of code, registered by name --------------------------
def _toy_decode(data: bytes, size: int, options) -> list[Decoded]:
    """Each line of a .vec file is one item: four numbers, then an optional label."""
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise BadItem("not-text", f"not UTF-8 text: {exc}") from exc
    if not lines:
        raise BadItem("empty", "the file holds no lines")
    out = []
    for number, line in enumerate(lines, start=1):
        words = line.split()
        try:
            values = [float(v) for v in words[:4]]
        except ValueError:
            values = []
        if len(values) != 4:
            out.append(Decoded(row=None, part=str(number), error="not-a-vector: a line holds four numbers"))
            continue
        out.append(Decoded(row=np.asarray(values, np.float32), part=str(number), key=" ".join(words[:4]).encode(),
                           label=words[4] if len(words) > 4 and options.get("labels") else None))
    return out


TOY = Modality(
    name="toy", noun="vector", plural="vectors", extensions=frozenset({".vec"}), decode=_toy_decode,
    cache_row=lambda size: ((4,), "float32"), model_input=lambda rows: np.asarray(rows, np.float32),
    preprocessing=lambda size: {"steps": ["Read four numbers."]}, input_spec=lambda size: {"shape": ["batch", 4]},
    quick_features=lambda cache, rows, dim, seed: np.asarray(cache[rows], np.float32)[:, :dim],
    fingerprints=lambda rows: (np.zeros((len(rows), 2), np.uint64), np.asarray(rows, np.float32).repeat(16, 1)),
    starting_encoders=(), ssl_methods=(), views="", preview="text", one_item_per_file=False, full_finetune=False,
    exports_models=False,
)


@pytest.fixture
def with_toy(monkeypatch):
    registry = Registry("modality", [*modalities.MODALITIES.values(),
                                     Entry("toy", "four numbers per file", f"{__name__}:TOY")])
    monkeypatch.setattr(modalities, "MODALITIES", registry)
    monkeypatch.setitem(sys.modules, __name__, sys.modules[__name__])


def _vec(path: Path, *values) -> Path:
    path.write_text(" ".join(str(v) for v in values))
    return path


def test_a_fourth_modality_is_one_module(ws, tmp_path, with_toy):
    files = [_vec(tmp_path / f"{i}.vec", i, 2, 3, 4) for i in range(3)] + [_vec(tmp_path / "bad.vec", 1, 2)]
    report = ingest(ws, files)
    assert ws.store.get_setting(MODALITY_SETTING) == "toy"
    assert report["added"] == 3 and [s["source"] for s in report["skipped"]] == [f"{files[3]}:1"]
    assert "a line holds four" in report["skipped"][0]["reason"]
    cache = read_cache(ws)
    assert cache.dtype == np.float32 and cache.shape == (3, 4) and cache[2].tolist() == [2, 2, 3, 4]
    from sslapp.features.items import fingerprints, quick_features

    rows = np.arange(3)
    assert quick_features(ws, rows, dim=2).tolist() == [[0, 2], [1, 2], [2, 2]]
    assert fingerprints(ws, rows)[1].shape == (3, 64)


def test_a_file_of_many_items_reports_each_bad_part_and_merges_exact_copies(ws, tmp_path, with_toy):
    table = tmp_path / "table.vec"
    table.write_text("1 2 3 4 cat\n5 6 7 8 dog\nnot numbers\n1 2 3 4 cat\n9 9 9 9\n")
    report = ingest(ws, [table], options={"labels": True})
    assert report["added"] == 3 and report["duplicates"] == 1
    assert [s["source"] for s in report["skipped"]] == [f"{table}:3"]
    items = ws.store.items(ids=[i for i, _ in ws.store.item_ids_and_cache_index()])
    assert sorted(i["source"] for i in items) == [f"{table}:1", f"{table}:2", f"{table}:5"]
    assert sorted(r["class_name"] for r in ws.store.labels()) == ["cat", "dog"]  # from the file itself
    again = ingest(ws, [table], options={"labels": True})  # the same rows again: all exact copies
    assert again["added"] == 0 and again["duplicates"] == 4


def test_a_kind_without_model_export_refuses_it_and_offers_the_labels(ws, tmp_path, with_toy, capsys, monkeypatch):
    """`exports_models=False`: `sslapp export` exits 2 saying what to use instead, writing nothing, and the
    Export page shows the same words and a labels.csv download instead of an Export button."""
    from streamlit.testing.v1 import AppTest

    from sslapp.cli import main

    table = tmp_path / "table.vec"
    table.write_text("1 2 3 4 cat\n5 6 7 8 dog\n")
    assert ingest(ws, [table], options={"labels": True})["labels"] == 2
    assert main(["export", str(ws.root), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "exporting a vector classifier is not built yet" in err and f"sslapp labels {ws.root} --export FILE" in err
    assert not (tmp_path / "out").exists() and not ws.store.jobs(limit=10)
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    at = AppTest.from_string("from sslapp.ui.pages import export\nexport.render()\n", default_timeout=60).run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("exporting a vector classifier is not built yet" in w.value for w in at.warning) and not at.button
    assert [b.label for b in at.get("download_button")] == ["Download the labels (labels.csv)"]


def test_another_kind_of_item_is_refused_and_nothing_changes(ws, tmp_path, with_toy):
    ingest(ws, [_png(tmp_path / "a.png", "red"), _png(tmp_path / "b.png", "green")])
    before = (ws.store.item_ids_and_cache_index(), np.array(read_cache(ws)))
    with pytest.raises(ModalityError) as err:
        ingest(ws, [_vec(tmp_path / "x.vec", 1, 2, 3, 4)])
    assert "holds images" in str(err.value) and "vectors" in str(err.value) and "new workspace" in str(err.value)
    assert ws.store.item_ids_and_cache_index() == before[0] and np.array_equal(read_cache(ws), before[1])
    # mixed with items of its own kind, the stranger is skipped with its reason and the rest goes in
    report = ingest(ws, [_png(tmp_path / "c.png", "blue"), tmp_path / "x.vec"])
    assert report["added"] == 1 and "wrong-kind" in report["skipped"][0]["reason"]


def test_the_reverse_refusal_in_the_other_direction(ws, tmp_path, with_toy):
    ingest(ws, [_vec(tmp_path / "x.vec", 1, 2, 3, 4)])
    with pytest.raises(ModalityError, match="holds vectors.*images"):
        ingest(ws, [_png(tmp_path / "a.png", "red")])
    assert len(ws.store.item_ids_and_cache_index()) == 1


def test_the_cli_refuses_with_a_clear_message_and_a_non_zero_exit(tmp_path):
    ws = tmp_path / "ws"
    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "a.png", "red")
    ok = subprocess.run([sys.executable, "-m", "sslapp", "ingest", str(ws), str(folder), "--json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["added"] == 1
    bad = subprocess.run([sys.executable, "-m", "sslapp", "ingest", str(ws), str(folder), "--modality", "toy"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "unknown modality 'toy'" in bad.stderr
