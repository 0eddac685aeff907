"""`sslapp label` and `sslapp labels --export` on CSV and sslapp JSON as a user runs them, in real processes
(the Label Studio and COCO formats and the annotator: tests/test_label_files.py)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from embed_helpers import make_workspace

from sslapp.export.labels import FIELDS


def sslapp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sslapp", *args], capture_output=True, text=True, timeout=60)


def test_import_is_all_or_nothing_names_every_bad_row_and_round_trips(tmp_path):
    ws, _ = make_workspace(tmp_path, per_class=2)
    items = ws.store.items()
    path = tmp_path / "labels.csv"
    good = (f"{items[0]['id']},cat\n"  # by id
            f"{items[1]['source']},dog\n")  # by source path
    path.write_text(
        "item,class\n" + good +
        "no/such/file.png,cat\n"  # unknown item
        f"{items[2]['id']},\n"  # empty class
        "justonecolumn\n"
        "\n"  # blank lines are ignored
        f"{items[3]['source']},cat\n", encoding="utf-8")
    out = sslapp("label", str(ws.root), "--csv", str(path), "--json")
    assert out.returncode == 1, out.stderr
    summary = json.loads(out.stdout)
    assert summary["labelled"] == 0 and [p["where"] for p in summary["problems"]] == ["line 4", "line 5", "line 6"]
    assert "3 problems, so nothing was imported" in out.stderr
    assert "line 4: no item in this workspace is 'no/such/file.png'" in out.stderr
    assert "line 5: the class name is empty" in out.stderr
    assert ws.store.labels() == [] and ws.store.classes() == []  # nothing stored, no class made
    path.write_text("item,class\n" + good + f"{items[3]['source']},cat\n", encoding="utf-8")
    out = sslapp("label", str(ws.root), path.as_posix(), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["labelled"] == 3 and summary["classes"] == {"cat": 2, "dog": 1}
    labels = {r["item_id"]: (r["class_name"], r["source"]) for r in ws.store.labels()}
    assert labels == {items[0]["id"]: ("cat", "imported"), items[1]["id"]: ("dog", "imported"),
                      items[3]["id"]: ("cat", "imported")}

    # --no-new-classes turns an unknown class into a bad row, and the file is refused
    strict = tmp_path / "strict.csv"
    strict.write_text(f"{items[4]['id']},bird\n{items[5]['id']},cat\n", encoding="utf-8")
    out = sslapp("label", str(ws.root), "--csv", str(strict), "--no-new-classes")
    assert out.returncode == 1 and "unknown class 'bird'" in out.stderr
    assert ws.store.class_id("bird") is None and ws.store.item(items[5]["id"])["label"] is None

    # export both formats, then the CSV imports back into a fresh copy unchanged
    out = sslapp("labels", str(ws.root), "--export", str(tmp_path / "out.csv"), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["labels"] == 3
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert tuple(rows[0]) == FIELDS  # the one schema, the same as an export's labels.csv
    assert {r["path"]: r["class"] for r in rows} == {items[0]["source"]: "cat", items[1]["source"]: "dog",
                                                    items[3]["source"]: "cat"}
    assert {r["source"] for r in rows} == {"imported"}
    assert sslapp("labels", str(ws.root), "--export", str(tmp_path / "out.json")).returncode == 0
    as_json = json.loads((tmp_path / "out.json").read_text())
    assert [{k: "" if v is None else str(v) for k, v in r.items()} for r in as_json] == rows
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    ws.store.remove_labels([items[0]["id"], items[1]["id"], items[3]["id"]])
    # a machine guess (an export's `propagated` row) is left out, never imported as a person's label
    with (tmp_path / "out.csv").open("a", encoding="utf-8") as f:
        f.write(f"{items[5]['id']},{items[5]['source']},dog,propagated,0.97,,,\n")
    out = sslapp("label", str(ws.root), "--csv", str(tmp_path / "out.csv"), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["labelled"] == 3, out.stderr
    assert json.loads(out.stdout)["propagated_left_out"] == 1 and "left out 1 machine guess" in out.stderr
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {
        items[0]["id"]: "cat", items[1]["id"]: "dog", items[3]["id"]: "cat"}


def test_bad_arguments(tmp_path):
    ws, _ = make_workspace(tmp_path, per_class=1)
    out = sslapp("label", str(ws.root), "--csv", str(tmp_path / "missing.csv"))
    assert out.returncode == 2 and "is not a file" in out.stderr
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    out = sslapp("label", str(ws.root), "--csv", str(binary))
    assert out.returncode == 2 and "UTF-8" in out.stderr
    out = sslapp("labels", str(ws.root), "--export", str(tmp_path / "x.txt"))
    assert out.returncode == 2 and ".csv or .json" in out.stderr
