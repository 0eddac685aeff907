"""Label review with the few, unbalanced labels people really give (issue 22), on the bundled real
photos (sample_data/, 300 CIFAR-10 PNGs) through the real review job, ImageNet features as the app
uses on colour photos; and the Train page's review card, which puts Keep first.

The labelling mirrors the first-session walk: one big class (24 ships), 4 labels of each other
class, and two images bulk-labelled into the big class by mistake (a cat and a bird labelled ship).
Before issue 22 the kNN vote among the labels, dominated by the ships, ranked the cat 19th and the
bird 5th among the labels it listed, with 21 right labels listed beside them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _finetune_ws import make_workspace
from streamlit.testing.v1 import AppTest

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
SHOWN = 8  # the Train page shows the first 8 listed
BIG, PER_CLASS, BIG_COUNT = "ship", 4, 24
PLANTED = {"cat": "ship", "bird": "ship"}  # true class -> the wrong label given


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The 300 sample photos ingested; the ImageNet start only (the app's pick for colour photos)."""
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    tmp = tmp_path_factory.mktemp("review-few")
    shutil.copytree(SAMPLE, tmp / "photos", ignore=shutil.ignore_patterns("*.md"))
    ws = open_workspace(tmp / "ws", cache_size=32)
    report = ingest(ws, [str(tmp / "photos")], base=str(tmp / "photos"), workers=1)
    assert report["added"] == 300
    ws.store.set_setting("features.starts", ["imagenet"])
    return ws


def _label(ws) -> tuple[dict[str, int], dict[int, str]]:
    """The walk's labelling; returns ({planted true class: item}, {item: true class} of every label)."""
    by_class: dict[str, list[int]] = {}
    for row in sorted(ws.store.items(), key=lambda r: r["source"]):
        by_class.setdefault(row["source"].split("/")[0], []).append(int(row["id"]))
    truth = {}
    for name, items in by_class.items():
        given = items[:BIG_COUNT if name == BIG else PER_CLASS]
        ws.store.set_labels(given, ws.store.class_id(name, create=True), source="user")
        truth.update(dict.fromkeys(given, name))
    planted = {}
    for true, wrong in PLANTED.items():
        item = by_class[true][PER_CLASS]  # the first one not labelled yet
        ws.store.set_labels([item], ws.store.class_id(wrong), source="user", action="bulk")
        planted[true], truth[item] = item, true
    return planted, truth


def test_planted_labels_lead_and_right_labels_of_the_big_class_are_not_flagged(photos):
    from sslapp.curate.read import flagged
    from sslapp.curate.review_job import review_workspace

    planted, truth = _label(photos)
    review = review_workspace(photos)
    assert review["embedding"].startswith("ImageNet") and review["route"] == "graph"
    assert review["n_labels"] == BIG_COUNT + 9 * PER_CLASS + len(PLANTED)
    listed = [r for r in review["rows"] if flagged(r)]
    first = [r["item"] for r in listed[:SHOWN]]
    for true, item in planted.items():
        assert item in first, (true, [(r["path"], r["suggested"]) for r in listed])
        row = next(r for r in listed if r["item"] == item)
        assert row["label"] == BIG and row["odds"] >= 5
    big_right = [r["path"] for r in listed if r["label"] == BIG and truth[r["item"]] == BIG]
    assert big_right == []  # not one of the 24 right ship labels
    wrong_listed = [r for r in listed if truth[r["item"]] != r["label"]]
    assert len(wrong_listed) == len(PLANTED)
    assert len(listed) - len(wrong_listed) <= 10  # the first version listed 21 right labels here
    assert review["n_flagged"] == len(listed) and review["notes"] == []

    # a class left with one label is named, not guessed at
    trucks = [i for i, t in truth.items() if t == "truck"]
    photos.store.remove_labels(trucks[1:])
    review = review_workspace(photos)
    assert "Too few labels in truck to check it (1 label): give it 1 more and check again." in review["notes"]
    assert trucks[0] not in {r["item"] for r in review["rows"]}


# -- the review card on the Train page ---------------------------------------------------------------
SCRIPT = "from sslapp.ui.pages import train\ntrain.render()\n"


def test_the_review_card_offers_keep_first_and_no_change_as_the_default(tmp_path, monkeypatch):
    from sslapp.cli.common import run_job_in_foreground
    from sslapp.curate.read import KEPT_SETTING, REVIEW_SETTING
    from sslapp.curate.review_job import review_workspace

    ws, truth = make_workspace(tmp_path, per_class=8, labels_per_class={"red": 6, "green": 6, "blue": 6})
    planted = next(i for i, t in truth.items() if t == "red" and ws.store.item(i)["label"] == "red")
    ws.store.set_labels([planted], ws.store.class_id("green"), source="user")
    job = run_job_in_foreground(ws, "finetune", {"mode": "linear", "propagate": "off"})  # the page's results
    assert job["status"] == "done", job["error"]
    review_workspace(ws)
    assert ws.store.get_setting(REVIEW_SETTING)["rows"][0]["item"] == planted
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    at = AppTest.from_string(SCRIPT, default_timeout=60).run()
    assert not at.exception
    card = [b for b in at.button if b.key and b.key.startswith("rv_") and b.key.endswith(f"_{planted}")]
    assert [b.label for b in card][:2] == ["Keep green", "Change to red"]
    review_buttons = [b for b in at.button if b.key and b.key.startswith(("rv_", "dis_", "uns_"))]
    assert review_buttons and all(b.proto.type != "primary" for b in review_buttons)
    text = "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)
    assert "1 label may be wrong" in text and "Labelled **green**; the images most like it say **red**" in text
    assert "times as likely as green" in text
    # the galleries name each image by its file, never its folder: the folder here is the true class
    shown = ws.store.item(planted)["source"]
    assert shown.startswith("red/") and "red/" not in text and "green/" not in text
    assert shown.split("/")[-1].replace(".", "\\.") in [c.value for c in at.caption]
    card[0].click()  # Keep: the label stays, and the card goes
    at.run()
    assert not at.exception
    kept_note = next(s.value for s in at.success if s.value.startswith("Kept"))
    assert "/" not in kept_note and shown.split("/")[-1].replace(".", "\\.") in kept_note
    assert ws.store.item(planted)["label"] == "green"
    assert ws.store.get_setting(KEPT_SETTING) == {str(planted): "green"}
    assert not [b for b in at.button if b.key == f"rv_keep_{planted}"]


def test_galleries_name_the_file_and_a_tables_row_never_the_folder():
    from sslapp.ui.common import file_name

    assert file_name("cat/0001.png") == "0001.png" and file_name(r"photos\cat\0001.png") == "0001.png"
    assert file_name("upload.zip:cat/0001.png") == "0001.png"
    assert file_name("notes/cooking/notes.csv:12") == "notes.csv:12"  # a text from a table: FILE:ROW
    assert file_name("upload.zip:notes.csv:12") == "notes.csv:12"
