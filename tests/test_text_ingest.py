"""Texts behind the item contract: tables (CSV, TSV, JSON Lines, Parquet: one text per row, FILE:ROW) and
.txt files (one text each) into real workspaces; each bad input with its reason and nothing stored lost;
a workspace of one kind refusing the other (issue 19); the first map's TF-IDF features and the
fingerprints that pair near-identical texts."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslapp.ingest.cache import read_cache
from sslapp.ingest.ingest import ingest
from sslapp.modalities import MODALITY_SETTING, ModalityError, get_modality
from sslapp.modalities.text.arrays import TEXT_BYTES, texts_of

ROOT = Path(__file__).resolve().parents[1]
TEXT = get_modality("text")


def _items(ws) -> dict[str, dict]:
    """source -> item row (with its cached text under "text")."""
    cache = read_cache(ws)
    rows = ws.store.items()
    return {r["source"]: {**r, "text": texts_of(cache[[r["cache_index"]]])[0]} for r in rows}


def _labels(ws) -> dict[str, str]:
    return {r["item_source"]: r["class_name"] for r in ws.store.labels()}


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 20), (200, 30, 30)).save(path)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sslapp", "ingest", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


REVIEWS = ('id,text,label\n'
           '1,"A quiet, moving film about two brothers.",pos\n'
           '2,Dull plot and wooden acting,neg\n'
           '3,"  A quiet,   moving film about\ttwo brothers.  ",pos\n'  # the first again, other spacing
           '4,"Two lines:\nthe second one here.",\n'  # no label
           '5,   ,neg\n')  # no text


def test_a_csv_with_a_label_column_round_trip(ws, tmp_path):
    csv = _write(tmp_path / "reviews.csv", REVIEWS)
    report = ingest(ws, [csv], options={"text_column": "text", "label_column": "label"})
    assert ws.store.get_setting(MODALITY_SETTING) == "text"
    assert report["added"] == 3 and report["duplicates"] == 1 and report["labels"] == 2
    assert report["skipped"] == [{"source": f"{csv}:5", "reason": "empty: row 5 has no text in 'text'"}]
    items = _items(ws)
    assert {s: i["text"] for s, i in items.items()} == {
        f"{csv}:1": "A quiet, moving film about two brothers.", f"{csv}:2": "Dull plot and wooden acting",
        f"{csv}:4": "Two lines: the second one here."}
    assert _labels(ws) == {f"{csv}:1": "pos", f"{csv}:2": "neg"}
    assert {r["source"] for r in ws.store.labels()} == {"imported"}
    assert read_cache(ws).shape == (3, TEXT_BYTES) and read_cache(ws).dtype == np.uint8
    original = ws.root / items[f"{csv}:1"]["original"]  # the file is kept once, whole, with its suffix
    assert original.suffix == ".csv" and original.read_bytes() == csv.read_bytes()
    assert not (ws.thumbs_dir.exists() and any(p.is_file() for p in ws.thumbs_dir.rglob("*")))  # no previews
    again = ingest(ws, [csv], options={"text_column": "text", "label_column": "label"})
    assert again["added"] == 0 and again["duplicates"] == 4 and ws.store.count_items() == 3


def test_the_text_column_is_the_one_of_the_longest_strings_and_said_in_a_note(ws, tmp_path):
    csv = _write(tmp_path / "posts.csv", "post_id,title,body,tag\n"
                                         "100000000000001,Rain,It rained all day and the river rose,w\n"
                                         "100000000000002,Sun,A bright morning over the hills at last,w\n")
    report = ingest(ws, [csv])
    assert report["added"] == 2 and report["labels"] == 0
    assert sorted(i["text"] for i in _items(ws).values()) == ["A bright morning over the hills at last",
                                                             "It rained all day and the river rose"]
    [note] = report["notes"]
    assert note["source"] == str(csv) and "'body'" in note["note"] and "--text-column" in note["note"]


@pytest.mark.parametrize("kind", ["tsv", "jsonl", "ndjson", "parquet"])
def test_tsv_json_lines_and_parquet(ws, tmp_path, kind):
    rows = [{"text": "The first text", "y": "a"}, {"text": "The second text", "y": "b"},
            {"text": "The first   text", "y": "a"}]
    path = tmp_path / f"data.{kind}"
    if kind == "tsv":
        _write(path, "text\ty\n" + "".join(f"{r['text']}\t{r['y']}\n" for r in rows))
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{**r, "n": i} for i, r in enumerate(rows)]), path)
    else:
        _write(path, "".join(json.dumps(r) + "\n" for r in rows) + "\n")
    report = ingest(ws, [path], options={"label_column": "y"})
    assert report["added"] == 2 and report["duplicates"] == 1 and report["skipped"] == []
    assert _labels(ws) == {f"{path}:1": "a", f"{path}:2": "b"}
    assert _items(ws)[f"{path}:2"]["text"] == "The second text"


def test_a_folder_and_a_zip_of_txt_files_with_labels_from_folders(ws, tmp_path):
    folder = tmp_path / "in"
    _write(folder / "pos" / "a.txt", "Loved it.\nWould watch again.")
    _write(folder / "neg" / "b.txt", "\ufeffNot for me.")  # a UTF-8 byte-order mark is dropped
    _write(folder / "pos" / "c.txt", "Loved   it. Would watch again.")  # a copy of a.txt after normalising
    _write(folder / "neg" / "d.txt", "Too long by an hour.".encode("utf-16"))  # UTF-16 with its BOM
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as zf:
        zf.writestr("pos/e.txt", "A delight from start to end.")
    report = ingest(ws, [folder, tmp_path / "more.zip"], labels_from_dirs=True, base=str(tmp_path))
    assert ws.store.get_setting(MODALITY_SETTING) == "text"
    assert report["added"] == 4 and report["duplicates"] == 1 and report["skipped"] == []
    assert _labels(ws) == {"in/neg/b.txt": "neg", "in/neg/d.txt": "neg", "in/pos/a.txt": "pos",
                           "more.zip:pos/e.txt": "pos"}
    items = _items(ws)
    assert items["in/pos/a.txt"]["text"] == "Loved it. Would watch again."
    assert items["in/neg/b.txt"]["text"] == "Not for me."
    assert items["in/neg/d.txt"]["text"] == "Too long by an hour."


def test_each_bad_input_is_reported_and_nothing_stored_is_lost(ws, tmp_path):
    good = _write(tmp_path / "good.csv", "text\nThe one good text\nAnother good text\n")
    assert ingest(ws, [good])["added"] == 2
    before = (ws.store.count_items(), np.array(read_cache(ws)), _labels(ws))
    bad = {
        "empty.csv": (b"", "empty: the file is empty (0 bytes)"),
        "header-only.csv": (b"text,label\n", "empty: the CSV has a header"),
        "no-column.csv": (b"body,label\nsome text,a\n",
                          "no-column: no column 'text' in this file; its columns are 'body', 'label'. Pass "
                          "--text-column"),
        "latin1.csv": ("text\ncaf\u00e9 au lait\n".encode("latin-1"),
                       "not-utf8: not UTF-8 text: byte 0xe9 on line 2"),
        "latin1.txt": ("caf\u00e9".encode("latin-1"), "not-utf8:"),
        "ragged.csv": (b"text\none\ntwo,three,four\n",
                       "bad-table: cannot read this CSV (Expected 1 fields in line 3"),
        "blank.txt": (b" \n\t\n", "empty: the file holds only whitespace"),
        "bin.txt": (b"a\x00b\x00c", "not-text: holds NUL bytes"),
        "broken.parquet": (b"PAR1 not really", "corrupt: not a readable Parquet file"),
    }
    paths = [_write(tmp_path / "bad" / name, data) for name, (data, _) in bad.items()]
    report = ingest(ws, paths, options={"text_column": "text"})
    reasons = {Path(s["source"]).name: s["reason"] for s in report["skipped"]}
    for name, (_, reason) in bad.items():
        assert reasons[name].startswith(reason), (name, reasons[name])
    assert report["added"] == 0
    assert (ws.store.count_items(), _labels(ws)) == (before[0], before[2])
    assert np.array_equal(read_cache(ws), before[1])


def test_a_json_lines_file_reports_each_bad_line_and_adds_the_rest(ws, tmp_path):
    path = _write(tmp_path / "posts.jsonl", '{"text": "first post"}\n'
                                            '{"text": "second post"\n'  # not closed
                                            "\n"
                                            '["an", "array"]\n'
                                            '{"text": 42}\n'
                                            '{"text": ""}\n'
                                            '{"other": "no text"}\n'
                                            '{"text": "last post"}\n')
    report = ingest(ws, [path], options={"text_column": "text"})
    assert report["added"] == 2
    reasons = {s["source"]: s["reason"] for s in report["skipped"]}
    assert reasons[f"{path}:2"].startswith("not-json: line 2 is not JSON (")
    assert reasons[f"{path}:4"].startswith("not-an-object: line 4 is an array")
    assert reasons[f"{path}:5"] == "not-text: line 5's 'text' is a number, not a string"
    assert reasons[f"{path}:6"] == "empty: line 6 has no text in 'text'"
    assert reasons[f"{path}:7"] == "empty: line 7 has no text in 'text'"
    assert sorted(_items(ws)) == [f"{path}:1", f"{path}:8"]


def test_a_one_megabyte_text_is_kept_cut_in_the_cache_and_noted(ws, tmp_path):
    words = ("lorem ipsum dolor sit amet " * 40_000)[:1_048_576]
    path = _write(tmp_path / "book.txt", words)
    table = _write(tmp_path / "books.csv", f'text\n"{words[:-1]}x"\nshort one\n')
    report = ingest(ws, [path, table])
    assert report["added"] == 3 and report["skipped"] == []
    notes = {n["source"]: n["note"] for n in report["notes"]}
    assert notes[str(path)].startswith("1,048,576 characters; the encoders read the first ~4,096 bytes")
    assert notes[f"{table}:1"].startswith("1,048,576 characters") and f"{table}:2" not in notes
    item = _items(ws)[str(path)]
    assert item["text"] == words[:TEXT_BYTES].strip() and len(item["text"].encode()) <= TEXT_BYTES
    assert (ws.root / item["original"]).read_bytes() == path.read_bytes()  # the original keeps it whole


def test_a_table_of_many_long_texts_notes_the_first_twenty_and_counts_the_rest():
    long = "word " * 1_000  # 5,000 characters each
    data = ("text\n" + "".join(f"{i} {long}\n" for i in range(23))).encode()
    items = TEXT.decode(data, 64, {"ext": ".csv"})
    assert len(items) == 23 and sum("note" in d.info for d in items) == 20
    assert items[0].info["file_notes"][-1].startswith("3 more texts are longer than 4,096 bytes")


def test_the_ingest_job_takes_the_table_options(ws, tmp_path):
    from sslapp.cli.common import run_job_in_foreground

    csv = _write(tmp_path / "reviews.csv", REVIEWS)
    params = {"paths": [str(csv)], "text_column": "text", "label_column": "label"}
    job = run_job_in_foreground(ws, "ingest", params)
    assert job["status"] == "done", job["error"]
    assert job["result"]["added"] == 3 and ws.store.label_counts() == {"pos": 1, "neg": 1}


def test_the_cli_takes_text_and_label_columns(tmp_path):
    csv = _write(tmp_path / "reviews.csv", REVIEWS.replace("id,text,label", "id,review,stars"))
    wsdir = tmp_path / "ws"
    run = _cli(str(wsdir), str(csv), "--text-column", "review", "--label-column", "stars", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["added"] == 3 and report["labels"] == 2
    missing = _cli(str(wsdir), str(csv), "--text-column", "body")
    assert missing.returncode != 0 and "no column 'body'" in missing.stderr and "'review'" in missing.stderr


def test_a_labels_csv_beside_photos_leaves_an_image_workspace(ws, tmp_path):
    folder = tmp_path / "photos"
    _write(folder / "labels.csv", "file,label\na.png,red\n")
    for name in ("a", "b", "c"):
        _png(folder / "red" / f"{name}.png")
    report = ingest(ws, [folder])
    assert ws.store.get_setting(MODALITY_SETTING) == "image"
    assert report["added"] == 1 and report["duplicates"] == 2  # three copies of one image
    assert [s["reason"].split(":")[0] for s in report["skipped"]] == ["wrong-kind"]


# -- issue 19: a workspace holds one kind; the other kind is refused and nothing changes -------------
def _settings(ws) -> tuple:
    return ws.store.get_setting(MODALITY_SETTING), ws.store.get_setting("cache_size")


def test_texts_into_an_image_workspace_are_refused_by_the_cli(tmp_path):
    from sslapp.workspace import open_workspace

    wsdir = tmp_path / "ws"
    ws = open_workspace(wsdir, create=True)
    ingest(ws, [_png(tmp_path / "a.png")])
    before = (ws.store.count_items(), _settings(ws), np.array(read_cache(ws)))
    csv = _write(tmp_path / "reviews.csv", REVIEWS)
    run = _cli(str(wsdir), str(csv), "--text-column", "text")
    assert run.returncode != 0
    assert "holds images" in run.stderr and "texts" in run.stderr and "new workspace" in run.stderr
    assert (ws.store.count_items(), _settings(ws)) == before[:2] and np.array_equal(read_cache(ws), before[2])
    with pytest.raises(ModalityError, match="holds images.*texts"):
        ingest(ws, [csv])


def test_images_into_a_text_workspace_are_refused_by_the_cli(tmp_path):
    from sslapp.workspace import open_workspace

    wsdir = tmp_path / "ws"
    ws = open_workspace(wsdir, create=True)
    ingest(ws, [_write(tmp_path / "reviews.csv", REVIEWS)])
    before = (ws.store.count_items(), _settings(ws), np.array(read_cache(ws)))
    run = _cli(str(wsdir), str(_png(tmp_path / "a.png")))
    assert run.returncode != 0
    assert "holds texts" in run.stderr and "images" in run.stderr and "new workspace" in run.stderr
    assert (ws.store.count_items(), _settings(ws)) == before[:2] and np.array_equal(read_cache(ws), before[2])


# -- the modality's arrays: first-map features, fingerprints, model input -----------------------------
BASE = ("the old lighthouse keeper climbed the narrow stairs each night to light the lamp that guided "
        "fishing boats past the rocks and into the small harbour below the cliffs")


def test_quick_features_and_fingerprints_pair_near_identical_texts(ws, tmp_path):
    from sslapp.curate.duplicates import near_duplicate_groups
    from sslapp.curate.similar import Index
    from sslapp.features.items import fingerprints, quick_features
    from sslapp.workspace import open_workspace

    one_word = BASE.replace("narrow", "steep")
    same_topic = ("a keeper of the lighthouse on the cliffs lit its lamp every evening so that boats coming "
                  "home to the harbour could find their way past the dangerous rocks in the dark")
    others = ["stock prices fell sharply on monday as investors worried about rising interest rates",
              "add the flour and sugar to the butter then bake the cake for forty minutes",
              "the team scored twice in the second half to win the championship final"]
    path = _write(tmp_path / "t.csv", "text\n" + "\n".join([BASE, one_word, same_topic, *others]) + "\n")
    ingest(ws, [path])
    ws = open_workspace(ws.root)
    ids = np.array([i for i, _ in ws.store.item_ids_and_cache_index()], np.int64)
    rows = np.array([c for _, c in ws.store.item_ids_and_cache_index()], np.int64)
    vectors = quick_features(ws, rows, dim=8)
    assert vectors.shape == (6, 8) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    hashes, profiles = fingerprints(ws, rows)
    assert hashes.shape == (6, 2) and hashes.dtype == np.uint64
    assert profiles.shape == (6, 64) and profiles.dtype == np.float32
    groups = near_duplicate_groups(ws, Index(encoder_id=0, name="quick", item_ids=ids, vectors=vectors))
    assert [g["paths"] for g in groups] == [[f"{path}:1", f"{path}:2"]]  # not the same-topic text


def test_quick_features_on_a_tiny_vocabulary_and_the_model_input():
    rows = np.stack([TEXT.decode(t.encode(), 64, {"ext": ".txt"})[0].row for t in ("yes", "no", "yes no")])
    vectors = TEXT.quick_features(rows, None, 16, 0)
    assert vectors.shape == (3, 16) and np.isfinite(vectors).all() and not vectors[:, 3:].any()
    assert TEXT.quick_features(rows, np.array([2, 0]), 16, 0).shape == (2, 16)
    assert TEXT.cache_row(64) == TEXT.cache_row(224) == ((TEXT_BYTES,), "uint8")
    assert TEXT.model_input(rows) is rows or np.array_equal(TEXT.model_input(rows), rows)
    assert texts_of(TEXT.model_input(rows)) == ["yes", "no", "yes no"]
    assert TEXT.preprocessing(64)["steps"] and TEXT.input_spec(64)["kind"] == "text"
    json.dumps([TEXT.preprocessing(64), TEXT.input_spec(64)])  # plain dicts, for model.json
