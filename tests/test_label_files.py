"""Labels in and out in the formats other tools use (CSV, sslapp JSON, Label Studio, COCO), with the
annotator of every label, on real workspaces through the CLI: round trips, files written the way
Label Studio writes them, and malformed files refused whole with nothing stored changed."""

from __future__ import annotations

import getpass
import json

import pytest
from cli_workspace import sslapp_here
from embed_helpers import make_workspace

from sslapp.ingest.ingest import ingest
from sslapp.workspace import open_workspace

FORMATS = {"csv": "out.csv", "json": "out.json", "label-studio": "out.label-studio.json", "coco": "out.coco.json"}


def labelled_workspace(tmp_path):
    """9 images; 4 labels by two people and one from a folder name (no annotator), one class left empty."""
    ws, _ = make_workspace(tmp_path / "a", per_class=3)
    by_source = {it["source"]: it["id"] for it in ws.store.items()}
    ws.store.add_classes(["red", "green", "blue", "purple"])
    ws.store.set_labels([by_source["red/red-000.png"], by_source["red/red-001.png"]], ws.store.class_id("red"),
                        annotator="alice")
    ws.store.set_labels([by_source["green/green-000.png"]], ws.store.class_id("green"), annotator="bob")
    ws.store.set_labels([by_source["blue/blue-002.png"]], ws.store.class_id("blue"), source="imported")
    return ws


def state(ws) -> tuple:
    """Everything an import could change: labels (with source and annotator), classes, history length."""
    labels = sorted((r["item_source"], r["class_name"], r["source"], r["annotator"]) for r in ws.store.labels())
    return labels, [(c["name"], c["implicit"]) for c in ws.store.classes()], len(ws.store.label_history(10_000))


def other_workspace(tmp_path):
    """The same images ingested in another order, so every item id differs from the first workspace's."""
    images = tmp_path / "a" / "images"
    ws = open_workspace(tmp_path / "b", cache_size=16)
    ingest(ws, [images / "green"], workers=1, base=str(images))
    ingest(ws, [images], workers=1, base=str(images))
    return ws


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_into_another_workspace_with_its_annotators(tmp_path, capsys, fmt):
    ws = labelled_workspace(tmp_path)
    out = tmp_path / FORMATS[fmt]
    done = sslapp_here(capsys, "labels", str(ws.root), "--export", str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"path": str(out), "labels": 4, "format": fmt}
    other = other_workspace(tmp_path)
    assert {it["source"]: it["id"] for it in other.store.items()} != {it["source"]: it["id"] for it in ws.store.items()}
    done = sslapp_here(capsys, "label", str(other.root), str(out), "--annotator", "carol", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["format"] == fmt and summary["labelled"] == 4
    assert summary["annotators"] == {"alice": 2, "bob": 1, "carol": 1}  # carol: the label the file names no one for
    before = {s: (c, a) for s, c, _, a in state(ws)[0]}
    after = {s: (c, a) for s, c, src, a in state(other)[0]}
    assert after == {**before, "blue/blue-002.png": ("blue", "carol")}
    assert {src for _, _, src, _ in state(other)[0]} == {"imported"}
    # and back into the first workspace as it is: the same labels, nothing doubled
    assert sslapp_here(capsys, "label", str(ws.root), str(out)).returncode == 0
    assert {s: c for s, c, _, _ in state(ws)[0]} == {s: c for s, (c, _) in before.items()}


def test_the_files_are_what_label_studio_and_coco_tools_read(tmp_path, capsys):
    ws = labelled_workspace(tmp_path)
    for fmt, name in FORMATS.items():
        assert sslapp_here(capsys, "labels", str(ws.root), "--export", str(tmp_path / name),
                           "--format", fmt).returncode == 0
    tasks = json.loads((tmp_path / FORMATS["label-studio"]).read_text())
    task = next(t for t in tasks if t["data"]["image"] == "red/red-000.png")
    [annotation] = task["annotations"]
    assert annotation["result"] == [{"id": f"sslapp-{task['id']}", "from_name": "class", "to_name": "image",
                                     "type": "choices", "value": {"choices": ["red"]}}]
    assert annotation["sslapp_annotator"] == "alice" and annotation["was_cancelled"] is False
    coco = json.loads((tmp_path / FORMATS["coco"]).read_text())
    assert [c["name"] for c in coco["categories"]] == ["red", "green", "blue", "purple"]  # every class
    image = next(i for i in coco["images"] if i["file_name"] == "green/green-000.png")
    [ann] = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
    assert coco["categories"][ann["category_id"] - 1]["name"] == "green" and ann["annotator"] == "bob"
    rows = json.loads((tmp_path / FORMATS["json"]).read_text())
    assert {r["path"]: r["annotator"] for r in rows}["blue/blue-002.png"] is None


def test_a_label_studio_project_export_takes_each_tasks_latest_annotation(tmp_path, capsys):
    """A file as Label Studio writes it: local-file links and upload names, several annotations per task,
    a cancelled one, annotators by email or user id, predictions and tasks nobody labelled."""
    ws, _ = make_workspace(tmp_path, per_class=2)

    def choice(name):
        return [{"id": "x1", "from_name": "label", "to_name": "img", "type": "choices", "value": {"choices": [name]}}]

    tasks = [
        {"id": 11, "data": {"img": "/data/local-files/?d=photos/red/red-000.png"}, "annotations": [
            {"id": 1, "result": choice("blue"), "updated_at": "2024-05-01T10:00:00.000000Z",
             "completed_by": {"id": 3, "email": "old@example.org"}},
            {"id": 2, "result": choice("red"), "updated_at": "2024-05-02T09:00:00.000000Z",
             "completed_by": {"id": 4, "email": "ann@example.org", "first_name": "Ann"}},
            {"id": 3, "result": choice("green"), "updated_at": "2024-05-03T09:00:00.000000Z", "was_cancelled": True}]},
        {"id": 12, "data": {"image": "/data/upload/7/8f7e2a1c-green-001.png"},
         "annotations": [{"id": 4, "result": choice("green"), "completed_by": 4}]},
        {"id": 13, "data": {"image": "/data/upload/7/0b1c2d3e-blue-000.png"}, "annotations": [],
         "predictions": [{"model_version": "m1", "score": 0.9, "result": choice("blue")}]},
        {"id": 14, "data": {"image": "s3://bucket/blue/blue-001.png"}, "annotations": []},
    ]
    path = tmp_path / "project-7-at-2024.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    done = sslapp_here(capsys, "label", str(ws.root), str(path), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["format"] == "label-studio" and summary["labelled"] == 2
    assert summary["propagated_left_out"] == 1 and summary["unlabelled_left_out"] == 1
    assert "left out 1 task without an annotation" in done.stderr and "left out 1 machine guess " in done.stderr
    assert sorted((s, c, a) for s, c, _, a in state(ws)[0]) == [
        ("green/green-001.png", "green", "Label Studio user 4"), ("red/red-000.png", "red", "ann@example.org")]


def _malformed(ws) -> dict[str, tuple[str, str, list[str]]]:
    """For each format: a file with good entries and bad ones, and the places the message must name."""
    items = {it["source"]: it for it in ws.store.items()}
    red, green = items["red/red-000.png"], items["green/green-000.png"]
    csv_text = ("item_id,path,class,annotator\n"
                f"{red['id']},{red['source']},red,alice\n"
                f",elsewhere/nothing.png,red,alice\n"  # no such item
                f"{green['id']},{green['source']},,bob\n"  # no class
                f"{red['id']},{red['source']},blue,bob\n")  # another class for the same item
    rows = [{"path": red["source"], "class": "red"}, {"path": green["source"]},
            {"sha256": "0" * 64, "path": "gone.png", "class": "red"}, "not a row"]
    ls = [{"id": 1, "data": {"image": red["source"]}, "annotations": [{"result": [
             {"type": "choices", "value": {"choices": ["red"]}}]}]},
          {"id": 2, "data": {"image": green["source"]}, "annotations": [{"result": [
             {"type": "choices", "value": {"choices": ["red", "green"]}}]}]},
          {"id": 3, "data": {"image": green["source"]}, "annotations": [{"result": [
             {"type": "rectanglelabels", "value": {"rectanglelabels": ["green"]}}]}]},
          {"id": 4, "annotations": [{"result": []}]}]
    coco = {"images": [{"id": 1, "file_name": red["source"]}, {"id": 2, "file_name": green["source"]}, {"id": 3}],
            "categories": [{"id": 1, "name": "red"}, {"id": 2, "name": "green"}],
            "annotations": [{"id": 10, "image_id": 1, "category_id": 1}, {"id": 11, "image_id": 2, "category_id": 9},
                            {"id": 12, "image_id": 7, "category_id": 1}, {"id": 13, "image_id": 1, "category_id": 2}]}
    return {
        "csv": ("bad.csv", csv_text, ["line 3: no item in this workspace is 'elsewhere/nothing.png'",
                                      "line 4: the class name is empty", "line 5: gives 'red/red-000.png' the class "
                                      "'blue', but line 2 gives it 'red'"]),
        "json": ("bad.json", json.dumps(rows), ["entry 2: has no class", "entry 3: no item in this workspace is "
                                                "'gone.png'", "entry 4: is not an object"]),
        "label-studio": ("bad.label-studio.json", json.dumps(ls), [
            "task 2 (id 2): its latest annotation chooses 2 classes (red, green)",
            "task 3 (id 3): its latest annotation chooses no class", "task 4 (id 4): has no `data`"]),
        "coco": ("bad.coco.json", json.dumps(coco), [
            "image 3 (id 3): needs `id` and `file_name`", "annotation 2 (id 11): `category_id` 9 is not in "
            "`categories`", "annotation 3 (id 12): `image_id` 7 is not in `images`",
            "annotation 4 (id 13): gives 'red/red-000.png' the class 'green', but annotation 1 (id 10) gives it"]),
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_malformed_file_is_refused_whole_naming_each_bad_entry(tmp_path, capsys, fmt):
    ws = labelled_workspace(tmp_path)
    before = state(ws)
    name, content, expected = _malformed(ws)[fmt]
    (tmp_path / name).write_text(content, encoding="utf-8")
    done = sslapp_here(capsys, "label", str(ws.root), str(tmp_path / name), "--json")
    assert done.returncode == 1, done.stderr
    assert f"{len(expected)} problems, so nothing was imported" in done.stderr
    for text in expected:
        assert text in done.stderr, (text, done.stderr)
    assert json.loads(done.stdout)["labelled"] == 0 and len(json.loads(done.stdout)["problems"]) == len(expected)
    assert state(ws) == before  # no label, class or history row changed


@pytest.mark.parametrize(("name", "content", "message"), [
    ("broken.json", '[{"data": {"image": "a.png"}', "cannot read broken.json as UTF-8 JSON"),
    ("other.json", '{"info": {}, "licenses": []}', "not a label file sslapp reads"),
    ("numbers.json", "[1, 2, 3]", "not a label file sslapp reads"),
    ("labels.txt", "a.png,red\n", "ends in .csv or .json"),
])
def test_a_file_that_is_no_label_file_at_all_says_so(tmp_path, capsys, name, content, message):
    ws = labelled_workspace(tmp_path)
    before = state(ws)
    (tmp_path / name).write_text(content, encoding="utf-8")
    done = sslapp_here(capsys, "label", str(ws.root), str(tmp_path / name))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert state(ws) == before


def test_the_annotator_is_the_os_user_by_default_and_undo_gives_the_old_one_back(tmp_path, capsys):
    ws = labelled_workspace(tmp_path)
    item = next(it for it in ws.store.items() if it["source"] == "red/red-000.png")
    path = tmp_path / "plain.csv"
    path.write_text(f"{item['source']},green\n", encoding="utf-8")
    assert sslapp_here(capsys, "label", str(ws.root), str(path)).returncode == 0
    row = next(r for r in ws.store.labels() if r["item_id"] == item["id"])
    assert (row["class_name"], row["annotator"], row["source"]) == ("green", getpass.getuser(), "imported")
    undone = ws.store.undo_last_label_action()
    assert undone["action"] == "import" and undone["items"] == 1
    row = next(r for r in ws.store.labels() if r["item_id"] == item["id"])
    assert (row["class_name"], row["annotator"], row["source"]) == ("red", "alice", "user")
    merged = ws.store.merge_classes(ws.store.class_id("red"), ws.store.class_id("green"))  # keeps who labelled
    assert merged == 2 and {r["annotator"] for r in ws.store.labels() if r["class_name"] == "green"} == {"alice", "bob"}


def test_an_older_workspace_gains_the_annotator_column_with_its_labels_kept(tmp_path):
    import sqlite3

    from sslapp.store import Store
    from sslapp.store.migrations import MIGRATIONS

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    for script in MIGRATIONS[:2]:  # the schema before annotators were kept
        conn.executescript(script)
    conn.execute("PRAGMA user_version=2")
    conn.execute("INSERT INTO items(id, source, sha256, width, height, cache_index, added_at) "
                 "VALUES(1, 'a.png', 'x', 4, 4, 0, 0)")
    conn.execute("INSERT INTO classes(id, name, created_at) VALUES(1, 'cat', 0)")
    conn.execute("INSERT INTO labels(item_id, class_id, source, updated_at) VALUES(1, 1, 'user', 0)")
    conn.commit()
    conn.close()
    store = Store(db)
    assert store.schema_version() == len(MIGRATIONS)
    assert [(r["class_name"], r["annotator"]) for r in store.labels()] == [("cat", None)]
