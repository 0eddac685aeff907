"""`sslapp embeddings import|export`: your own vectors in, the app's vectors and map out.

Real workspaces of real PNG files, the real CLI in this process, real jobs; every bad file is a real
file on disk, and must leave the workspace exactly as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

COLOURS = ("red", "green", "blue")
PER_COLOUR = 4
N = PER_COLOUR * len(COLOURS)
DIM = 5


def sslapp(capsys, *args):
    from sslapp.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def add_images(folder, names, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        a = (rng.random((20, 20, 3)) * 80).astype(np.uint8)
        a[..., COLOURS.index(name.rstrip("0123456789"))] += 150
        Image.fromarray(a).save(folder / f"{name}.png")


@pytest.fixture
def workspace(tmp_path):
    """12 tiny images in three colour classes; the pixel start only (fast)."""
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    root = tmp_path / "images"
    add_images(root, [f"{c}{i}" for c in COLOURS for i in range(PER_COLOUR)])
    ws = open_workspace(tmp_path / "ws", cache_size=16)
    assert ingest(ws, [str(root)], base=str(root), workers=1)["added"] == N
    ws.store.set_setting("features.starts", ["pixels"])
    return ws


def sources(ws) -> list[str]:
    return [r["source"] for r in ws.store.items()]  # the store's item order


def my_vectors(ws, seed: int = 0) -> np.ndarray:
    """Vectors that separate the colours cleanly, one row per item in the store's order."""
    rng = np.random.default_rng(seed)
    cls = [COLOURS.index(s.removesuffix(".png").rstrip("0123456789")) for s in sources(ws)]
    return (np.eye(DIM)[cls] * 3 + rng.normal(size=(len(cls), DIM)) * 0.1).astype(np.float32)


def write_parquet(path, paths, vectors) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"path": pa.array(paths, pa.string()),
                             "vector": pa.array([list(map(float, v)) for v in vectors], pa.list_(pa.float32()))}),
                   path)


def write_npy(path, paths, vectors, paths_file=None) -> None:
    np.save(path, vectors)
    (paths_file or path.with_suffix(".paths.txt")).write_text("".join(p + "\n" for p in paths), encoding="utf-8")


def state(ws) -> dict:
    """Everything an import could change: artifacts, the embedding settings, files under embeddings/."""
    from sslapp.features.read import CHOICE_SETTING, PINNED_SETTING

    return {"artifacts": {k: [a["id"] for a in ws.store.artifacts(k, limit=1000)]
                          for k in ("encoder", "embeddings", "map", "classifier", "export")},
            "pinned": ws.store.get_setting(PINNED_SETTING), "choice": ws.store.get_setting(CHOICE_SETTING),
            "files": sorted(p.name for p in ws.embeddings_dir.glob("*"))}


def test_parquet_import_joins_the_candidates_and_drives_the_map_when_pinned(workspace, tmp_path, capsys):
    from sslapp.features import service

    ws = workspace
    vectors = my_vectors(ws)
    write_parquet(tmp_path / "mine.parquet", sources(ws), vectors)
    out = sslapp(capsys, "embeddings", "import", ws.root, tmp_path / "mine.parquet", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    art_id = result["encoder_artifact_id"]
    assert result == {"encoder_artifact_id": art_id, "matched": N, "total": N, "dim": DIM}
    assert f"--use {art_id}" in out.stderr and ws.store.get_setting(service.PINNED_SETTING) is None  # not pinned
    art = next(a for a in service.encoders(ws) if a["id"] == art_id)
    assert art["meta"]["start"] == "imported" and art["path"].startswith("embeddings/imported-")
    assert service.describe(art) == "your imported vectors (mine.parquet)"
    assert np.array_equal(service.features_for(ws, art).features, vectors)

    emb = service.best_embedding(ws)  # measured (here: the prior) among the candidates, the import one of them
    choice = ws.store.get_setting(service.CHOICE_SETTING)
    assert art_id in [c["encoder_artifact_id"] for c in choice["candidates"]] and len(choice["candidates"]) == 2
    assert emb.artifact["id"] != art_id  # before labels can measure, the app keeps its measured prior

    info = json.loads(sslapp(capsys, "info", ws.root, "--json").stdout)
    assert {"id": art_id, "name": "your imported vectors (mine.parquet)"}.items() <= \
        next(e for e in info["encoders"] if e["id"] == art_id).items()

    out = sslapp(capsys, "embed", ws.root, "--use", art_id, "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["encoder_artifact_id"] == art_id and r["embedding_name"] == "your imported vectors (mine.parquet)"
    assert ws.store.latest_artifact("map")["meta"]["encoder_artifact_id"] == art_id


def test_npy_import_matches_by_the_end_of_the_path_and_use_pins_it(workspace, tmp_path, capsys):
    from sslapp.features import service

    ws = workspace
    vectors = my_vectors(ws)
    long_paths = [f"/data/photos/{s}" for s in sources(ws)]  # computed elsewhere, on the original folder
    write_npy(tmp_path / "clip.npy", long_paths, vectors)
    out = sslapp(capsys, "embeddings", "import", ws.root, tmp_path / "clip.npy", "--use", "--json")
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)["encoder_artifact_id"]
    assert f"{N} by the end of their path" in out.stderr and "pinned" in out.stderr
    assert ws.store.get_setting(service.PINNED_SETTING) == first
    emb = service.best_embedding(ws)
    assert emb.artifact["id"] == first and np.array_equal(emb.features, vectors)
    assert ws.store.get_setting(service.CHOICE_SETTING)["reason"] == "chosen by you"

    again = my_vectors(ws, seed=1)  # the same name imported again replaces it, and the pin follows
    write_npy(tmp_path / "v2.npy", sources(ws), again, paths_file=tmp_path / "rows.txt")
    out = sslapp(capsys, "embeddings", "import", ws.root, tmp_path / "v2.npy", "--paths", tmp_path / "rows.txt",
                 "--name", "clip", "--json")
    assert out.returncode == 0, out.stderr
    second = json.loads(out.stdout)["encoder_artifact_id"]
    imported = [a["id"] for a in service.encoders(ws) if a["meta"].get("start") == "imported"]
    assert imported == [second] and ws.store.get_setting(service.PINNED_SETTING) == second
    assert np.array_equal(service.best_embedding(ws).features, again)
    assert service.describe(service.encoders(ws)[-1]) == "your imported vectors 'clip' (v2.npy)"

    out = sslapp(capsys, "embeddings", "import", ws.root, tmp_path / "v2.npy", "--paths", tmp_path / "rows.txt")
    assert out.returncode == 0, out.stderr  # another name: another candidate, and the pin stays
    assert len([a for a in service.encoders(ws) if a["meta"].get("start") == "imported"]) == 2
    assert ws.store.get_setting(service.PINNED_SETTING) == second


def test_export_then_import_round_trip(workspace, tmp_path, capsys):
    import pandas as pd

    from sslapp.features import service
    from sslapp.maps.read import load_map

    ws = workspace
    vectors = my_vectors(ws)
    write_parquet(tmp_path / "mine.parquet", sources(ws), vectors)
    assert sslapp(capsys, "embeddings", "import", ws.root, tmp_path / "mine.parquet", "--use").returncode == 0
    assert sslapp(capsys, "embed", ws.root).returncode == 0
    the_map = load_map(ws)

    out = sslapp(capsys, "embeddings", "export", ws.root, tmp_path / "out.parquet", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"file": str(tmp_path / "out.parquet"), "rows": N, "dim": DIM}
    table = pd.read_parquet(tmp_path / "out.parquet")
    assert list(table.columns) == ["path", "vector", "x", "y", "cluster"]
    assert table["path"].tolist() == sources(ws)
    assert np.array_equal(np.stack(table["vector"].to_numpy()).astype(np.float32), vectors)
    rows = the_map.rows_of([r["id"] for r in ws.store.items()])
    assert np.array_equal(table[["x", "y"]].to_numpy(np.float32), the_map.xy[rows])
    assert table["cluster"].tolist() == the_map.cluster[rows].tolist()

    out = sslapp(capsys, "embeddings", "export", ws.root, tmp_path / "out.npy", "--json")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out.paths.txt").read_text().splitlines() == sources(ws)
    assert (tmp_path / "out.map.csv").read_text().splitlines()[0] == "path,x,y,cluster"
    out = sslapp(capsys, "embeddings", "import", ws.root, tmp_path / "out.npy", "--name", "back", "--json")
    assert out.returncode == 0, out.stderr
    back = next(a for a in service.encoders(ws) if a["id"] == json.loads(out.stdout)["encoder_artifact_id"])
    assert np.array_equal(service.features_for(ws, back).features, vectors)

    out = sslapp(capsys, "embeddings", "export", ws.root, tmp_path / "out.npy")
    assert out.returncode == 2 and "already exists" in out.stderr and "--overwrite" in out.stderr
    assert sslapp(capsys, "embeddings", "export", ws.root, tmp_path / "out.npy", "--overwrite").returncode == 0


def _ragged(tmp, src, vec):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [list(map(float, v)) for v in vec]
    rows[-1] = rows[-1][:-1]
    pq.write_table(pa.table({"path": src, "vector": pa.array(rows, pa.list_(pa.float32()))}), tmp / "v.parquet")
    return [tmp / "v.parquet"]


def _npy(array, n_paths=None):
    def make(tmp, src, vec):
        write_npy(tmp / "v.npy", src[:n_paths], array(vec))
        return [tmp / "v.npy"]
    return make


def _parquet(paths, vectors=lambda v: v):
    def make(tmp, src, vec):
        write_parquet(tmp / "v.parquet", paths(src), vectors(vec))
        return [tmp / "v.parquet"]
    return make


def _with(vec, row, value, dtype=np.float32):
    out = vec.astype(dtype)
    out[row, 0] = value
    return out


def _raw(name, data):
    def make(tmp, src, vec):
        (tmp / name).write_bytes(data)
        return [tmp / name]
    return make


def _npy_alone(tmp, src, vec):
    np.save(tmp / "v.npy", vec)
    return [tmp / "v.npy"]


def _parquet_columns(tmp, src, vec):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"path": src, "embedding": [list(map(float, v)) for v in vec]}), tmp / "v.parquet")
    return [tmp / "v.parquet"]


BAD = {
    "ragged rows": (_ragged, "different lengths"),
    "1-d array": (_npy(lambda v: v[:, 0]), "must be an N x D array"),
    "3-d array": (_npy(lambda v: v[:, :, None]), "must be an N x D array"),
    "more vectors than paths": (_npy(lambda v: v, n_paths=N - 1), f"{N} vectors but {N - 1} paths"),
    "unknown paths": (_parquet(lambda s: [f"elsewhere/img{i}.jpg" for i in range(len(s))]), "no path in v.parquet"),
    "some images without a vector": (_parquet(lambda s: s[:-2], lambda v: v[:-2]), f"2 of {N} images have no vector"),
    "NaN": (_parquet(lambda s: s, lambda v: _with(v, 3, np.nan)), f"NaN or infinite values (or numbers too large "
            f"for float32) in 1 of {N} vectors, e.g. 'blue3.png'"),
    "inf": (_npy(lambda v: _with(v, 0, np.inf)), "NaN or infinite"),
    "too large for float32": (_npy(lambda v: _with(v, 0, 1e300, np.float64)), "too large for float32"),
    "duplicate paths": (_parquet(lambda s: [s[0], *s[:-1]]), "paths given more than once (1): 'blue0.png'"),
    "empty file": (_parquet(lambda s: [], lambda v: v[:0]), "holds no vectors"),
    "not parquet": (_raw("v.parquet", b"these are not vectors"), "cannot read v.parquet as Parquet"),
    "not npy": (_raw("v.npy", b"\x93NUMPY garbage"), "cannot read v.npy"),
    "no paths file": (_npy_alone, "the paths file"),
    "wrong columns": (_parquet_columns, "no 'vector' column"),
    "csv": (_raw("v.csv", b"path,vector\n"), "use a .parquet file"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_and_changes_nothing(workspace, tmp_path, capsys, case):
    ws = workspace
    write_parquet(tmp_path / "good.parquet", sources(ws), my_vectors(ws))  # a pinned import already there
    assert sslapp(capsys, "embeddings", "import", ws.root, tmp_path / "good.parquet", "--use").returncode == 0
    before = state(ws)
    bad = tmp_path / "bad"
    bad.mkdir()
    make, message = BAD[case]
    out = sslapp(capsys, "embeddings", "import", ws.root, *make(bad, sources(ws), my_vectors(ws, seed=2)), "--json")
    assert out.returncode == 2 and out.stdout == "", out
    assert message in out.stderr and "Nothing was imported" in out.stderr, out.stderr
    assert state(ws) == before


def test_a_missing_file_and_an_empty_workspace_are_refused(workspace, tmp_path, capsys):
    from sslapp.workspace import open_workspace

    out = sslapp(capsys, "embeddings", "import", workspace.root, tmp_path / "nope.parquet")
    assert out.returncode == 2 and "does not exist" in out.stderr
    empty = open_workspace(tmp_path / "empty")
    out = sslapp(capsys, "embeddings", "export", empty.root, tmp_path / "out.parquet")
    assert out.returncode == 1 and "no items yet" in out.stderr and not (tmp_path / "out.parquet").exists()


def test_images_added_later_leave_the_import_out_until_it_is_imported_again(workspace, tmp_path, capsys):
    from sslapp.features import service
    from sslapp.ingest.ingest import ingest

    ws = workspace
    write_parquet(tmp_path / "mine.parquet", sources(ws), my_vectors(ws))
    out = sslapp(capsys, "embeddings", "import", ws.root, tmp_path / "mine.parquet", "--use", "--json")
    art_id = json.loads(out.stdout)["encoder_artifact_id"]
    more = tmp_path / "more"
    add_images(more, ["red9", "blue9"], seed=3)
    assert ingest(ws, [str(more)], base=str(more), workers=1)["added"] == 2

    emb = service.best_embedding(ws)
    assert emb.artifact["id"] != art_id
    assert any(f"has no vector for 2 of {N + 2} images" in n for n in emb.notes), emb.notes
    assert any(f"artifact {art_id}) is left out" in n for n in emb.notes)
    assert service.current_embedding(ws).artifact["id"] != art_id
    text = sslapp(capsys, "info", ws.root).stdout
    assert "left out" in text and "your imported vectors (mine.parquet)" in text

    vectors = np.concatenate([my_vectors(ws)[:N], np.ones((2, DIM), np.float32)])  # store order: new ones last
    write_parquet(tmp_path / "mine.parquet", sources(ws), vectors)
    assert sslapp(capsys, "embeddings", "import", ws.root, tmp_path / "mine.parquet").returncode == 0
    emb = service.best_embedding(ws)  # the pin followed the name to the new import
    assert emb.artifact["id"] > art_id and np.array_equal(emb.features, vectors)


def test_a_classifier_on_imported_vectors_trains_but_is_not_exported_as_an_image_model(workspace, tmp_path, capsys):
    from sslapp.cli.common import run_job_in_foreground

    ws = workspace
    write_parquet(tmp_path / "mine.parquet", sources(ws), my_vectors(ws))
    out = sslapp(capsys, "embeddings", "import", ws.root, tmp_path / "mine.parquet", "--use", "--json")
    art_id = json.loads(out.stdout)["encoder_artifact_id"]
    by_source = {r["source"]: r["id"] for r in ws.store.items()}
    for colour in COLOURS:
        ws.store.set_labels([by_source[f"{colour}0.png"], by_source[f"{colour}1.png"]],
                            ws.store.class_id(colour, create=True))
    out = sslapp(capsys, "finetune", ws.root, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["mode"] == "linear" and result["estimate"]["mean"] == 1.0  # the vectors separate the colours
    assert ws.store.latest_artifact("classifier")["meta"]["encoder_artifact_id"] == art_id
    out = sslapp(capsys, "finetune", ws.root, "--mode", "full")
    assert out.returncode == 1 and "imported vectors have none" in out.stderr

    refusal = "was trained on your imported vectors (mine.parquet), which sslapp cannot compute from an image"
    out = sslapp(capsys, "export", ws.root, tmp_path / "out")
    assert out.returncode == 2 and refusal in out.stderr and not (tmp_path / "out").exists()
    job = run_job_in_foreground(ws, "export", {})
    assert job["status"] == "failed" and refusal in job["error"], job
    assert ws.store.artifacts("export") == [] and not any(ws.exports_dir.iterdir())
    out = sslapp(capsys, "export", ws.root, tmp_path / "enc", "--encoder-only", "--formats", "safetensors", "--json")
    assert out.returncode == 0, out.stderr  # the newest image encoder, not the imported vectors
    assert json.loads(out.stdout)["backbone"] == "pixels"


def test_matching_rules_and_a_torch_free_core():
    from sslapp.features.imported import match_paths

    m = match_paths(["a\\b.png", "./c/d.png", "x/e.png", "y/e.png", "f.png", "/abs/g/h.png"],
                    ["a/b.png", "c/d.png", "e.png", "p/f.png", "q/f.png", "g/h.png", "z.png"])
    assert m.row_of_item.tolist() == [0, 1, -1, -1, -1, 5, -1]
    assert m.clashes == ["e.png"]  # two rows fit it: neither is taken
    assert m.ambiguous == ["f.png"] and m.unmatched == [] and m.by_tail == 3
    code = ("import sys, sslapp.features.imported, sslapp.cli.embeddings, sslapp.features.service; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
