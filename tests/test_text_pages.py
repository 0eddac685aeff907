"""The pages on a text workspace, in Streamlit's AppTest: a real CSV through the real ingest, then the
Label page (the text whole and large, labelled by key), the selection grid (a list of texts as
toggles), the Data page (texts, their words, the column pickers of an uploaded table, through the real
ingest job), near-duplicates, and the Explore map (a text's start in the hover, no close-up, the
clicked text and the selection's texts). User text is never read as Markdown or HTML."""

from __future__ import annotations

import csv
import json
import os
import signal

import pytest
from in_process_worker import start_worker_thread
from streamlit.testing.v1 import AppTest

from sslapp.ingest.ingest import ingest
from sslapp.ingest.read import item_texts
from sslapp.jobs.launcher import pid_alive
from sslapp.ui.item_view import SNIPPET, clip, md_escape
from sslapp.workspace import open_workspace

TOPICS = {"cooking": "simmer the onions slowly in butter, then add garlic and a pinch of salt",
          "football": "the striker scored twice before half time and the keeper saved a penalty",
          "weather": "heavy rain and strong winds are expected across the north by tomorrow"}
TRICKY = "<b>bold?</b> [a link](http://example.org) *stars* $x^2$ :red[red] `code` #tag"
LONG = "A long letter about the garden: " + " ".join(f"word{i}" for i in range(120))


def _write_csv(path, with_topic: bool = True) -> list[str]:
    """12 texts (4 per topic, the first one long), ids and topics in other columns; returns the texts."""
    texts = []
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "body", "topic"])
        for t, (topic, base) in enumerate(TOPICS.items()):
            for i in range(4):
                text = LONG if t == 0 and i == 0 else f"Note {i}: {base}. {TRICKY} ({topic})"
                texts.append(text)
                writer.writerow([len(texts), text, topic if with_topic else ""])
    return texts


@pytest.fixture
def text_ws(tmp_path, monkeypatch):
    texts = _write_csv(tmp_path / "notes.csv", with_topic=False)
    ws = open_workspace(tmp_path / "ws", create=True)
    report = ingest(ws, [tmp_path / "notes.csv"], workers=1, base=str(tmp_path))
    assert report["added"] == 12 and not report["skipped"], report
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    yield ws, texts
    pid = (ws.store.get_setting("worker") or {}).get("pid")
    if pid and pid != os.getpid() and pid_alive(pid):  # a worker a page started for this test
        os.kill(pid, signal.SIGTERM)


def run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.message for e in at.exception]
    return at


def _shown_texts(at: AppTest) -> list[str]:
    return [t.value for t in at.get("text")]


def _no_raw_markup(at: AppTest) -> None:
    """No user text reached a place that reads Markdown or HTML unescaped."""
    for element in (*at.markdown, *at.caption, *at.info, *at.success):
        assert "<b>" not in element.value and "](http" not in element.value, element.value
    for button in at.button:
        assert "<b>" not in (button.help or "") and "](http" not in (button.help or ""), button.help


def test_cached_texts_read_back_whole_or_their_start(text_ws):
    ws, texts = text_ws
    items = ws.store.items()
    assert [item_texts(ws, items)[r["id"]] for r in items] == texts
    starts = item_texts(ws, items, chars=5)
    assert all(starts[r["id"]] == t[:5] for r, t in zip(items, texts, strict=True))
    assert md_escape("<b>x</b> [a](b)") == r"\<b\>x\<\/b\> \[a\]\(b\)"
    assert clip(LONG, SNIPPET).endswith("…") and len(clip(LONG, SNIPPET)) <= SNIPPET + 1


def test_label_page_shows_the_text_large_and_labels_it_by_key(text_ws):
    ws, texts = text_ws
    at = run(AppTest.from_string("from sslapp.ui.pages import label\nlabel.render()\n"))
    at.text_area(key="label_new_class_name").input("cooking, football, weather")
    at.button(key="label_add_class").click()
    run(at)
    current = int(next(c.value for c in at.caption if c.value.startswith("#") and " · " in c.value)[1:].split(" ")[0])
    text = item_texts(ws, [ws.store.item(current)])[current]
    shown = _shown_texts(at)
    assert shown[0] == text  # whole, even the long one, as plain text
    assert any(f"item_text_{current}" in str(c.proto) for c in at.get("flex_container"))  # the large style
    assert any("notes.csv:" in c.value for c in at.caption)
    up_next = [s for s in shown[1:] if s]
    assert up_next and all(len(s) <= 121 for s in up_next)  # the queue after it: each text's start
    cooking = ws.store.class_id("cooking")
    button = at.button(key=f"label_{current}_class_{cooking}")
    assert button.label == "1 · cooking"  # the same keys as for images
    button.click()
    run(at)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {current: "cooking"}
    assert any(f"#{current} → cooking" in c.value for c in at.caption)
    assert _shown_texts(at)[0] != text  # the next text
    _no_raw_markup(at)


def test_selection_grid_lists_texts_as_toggles(text_ws):
    ws, texts = text_ws

    def grid():
        import os

        import streamlit as st

        from sslapp.ui.selection_grid import selection_grid
        from sslapp.workspace import open_workspace

        kept = selection_grid(open_workspace(os.environ["SSLAPP_WORKSPACE"]), [1, 2, 3, 5], key="g")
        st.write(f"kept {kept}")

    at = run(AppTest.from_function(grid))
    shown = _shown_texts(at)
    assert shown[0] == clip(LONG, SNIPPET) != LONG and shown[1:] == [texts[1], texts[2], texts[4]]
    toggle = at.button(key="g-t-1")
    assert toggle.label == "—" and "word119" in toggle.help  # the rest in the tooltip
    assert r"\<b\>bold\?\<\/b\>" in at.button(key="g-t-2").help  # escaped: the tooltip reads Markdown
    at.button(key="g-t-2").click()
    run(at)
    assert "kept [1, 3, 5]" in [m.value for m in at.markdown]
    assert any("st-key-g-c-out-2" in str(c.proto) or "g-c-out-2" in str(c.proto) for c in at.get("flex_container"))
    assert "Keep the left-out texts" in at.button(key="g-invert").help
    _no_raw_markup(at)


def test_data_page_shows_texts_in_their_words(text_ws):
    ws, texts = text_ws
    at = run(AppTest.from_string("from sslapp.ui.pages import data\ndata.render()\n"))
    assert next(m.value for m in at.metric if m.label == "Texts") == "12"
    assert any(s.value == "Texts (12)" for s in at.subheader)
    shown = _shown_texts(at)
    assert clip(LONG, SNIPPET) in shown and texts[1] in shown
    words = " ".join(c.value for c in (*at.caption, *at.markdown))
    assert "exact copies are already dropped when texts are added" in words and "images" not in words
    assert not at.get("image")
    uploader = next(u for u in at.get("file_uploader") if "or zip archives" in u.proto.label)
    assert uploader.proto.label.startswith("Texts (") and ".csv" in uploader.proto.type
    assert ".png" not in uploader.proto.type  # the workspace holds texts: only texts (or zips) are taken
    _no_raw_markup(at)


def test_the_train_page_asks_for_labelled_texts(text_ws):
    at = run(AppTest.from_string("from sslapp.ui.pages import train\ntrain.render()\n"))
    assert any("Label texts of at least 2 classes" in w.value for w in at.warning)
    assert at.selectbox(key="train_propagate").label == "Use unlabelled texts"


def test_an_uploaded_csv_gets_column_pickers_that_reach_the_ingest(tmp_path, monkeypatch):
    ws = open_workspace(tmp_path / "ws", create=True)
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    _write_csv(tmp_path / "notes.csv")
    monkeypatch.setenv("SSLAPP_TEST_UPLOAD", str(tmp_path / "notes.csv"))

    def page():
        import os
        from pathlib import Path

        from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

        from sslapp.ui.pages import data
        from sslapp.workspace import open_workspace

        path = Path(os.environ["SSLAPP_TEST_UPLOAD"])
        upload = UploadedFile(UploadedFileRec("f1", path.name, "text/csv", path.read_bytes()), None)
        data._submit_upload(open_workspace(os.environ["SSLAPP_WORKSPACE"]), [upload], False, "add_files")

    at = run(AppTest.from_function(page))
    text_box, label_box = at.selectbox(key="add_files_text_column"), at.selectbox(key="add_files_label_column")
    assert text_box.options == ["detect: the longest texts (now 'body')", "id", "body", "topic"]
    assert label_box.options == ["no labels", "id", "body", "topic"]
    text_box.set_value("body")
    label_box.set_value("topic")
    run(at)
    worker = start_worker_thread(ws, idle_exit_s=5.0)  # the page finds it alive and starts no other
    at.button(key="add_files").click()
    run(at)
    job = ws.store.jobs(kind="ingest")[0]
    assert job["params"]["text_column"] == "body" and job["params"]["label_column"] == "topic"
    worker.join(60)
    job = ws.store.job(job["id"])
    assert job["status"] == "done", job["error"]
    assert job["result"]["added"] == 12 and job["result"]["labels"] == 12
    assert {r["class_name"] for r in ws.store.labels()} == set(TOPICS)
    data = run(AppTest.from_string("from sslapp.ui.pages import data\ndata.render()\n"))
    assert next(m.value for m in data.metric if m.label == "Texts") == "12"


def test_an_empty_workspace_takes_images_and_texts_and_a_server_table_gets_pickers(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(tmp_path / "ws"))
    at = run(AppTest.from_string("from sslapp.ui.pages import data\ndata.render()\n"))
    uploader = next(u for u in at.get("file_uploader") if "or zip archives" in u.proto.label)
    assert {".png", ".jpg", ".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".txt", ".zip"} <= set(uploader.proto.type)
    assert any(e.proto.label == "Add images, texts or sounds" for e in at.expander)
    _write_csv(tmp_path / "notes.tsv")  # a table on the server gets the same pickers
    (tmp_path / "notes.tsv").write_text((tmp_path / "notes.tsv").read_text().replace(",", "\t"))
    at.text_input(key="server_path").input(str(tmp_path / "notes.tsv"))
    run(at)
    assert at.selectbox(key="server_label_column").options == ["no labels", "id", "body", "topic"]


def test_explore_more_like_this_and_near_duplicates_show_texts(text_ws):
    """With real text features (the TF-IDF start): the map's hover, the clicked text, the selection's
    texts, More like this from the preview, and the near-duplicate groups the real job finds."""
    from sslapp.cli.common import run_job_in_foreground

    ws, texts = text_ws
    ws.store.set_setting("features.starts", ["tfidf"])  # MiniLM's start has its own tests
    assert run_job_in_foreground(ws, "embed", {"k": 3, "provisional": False})["status"] == "done"
    at = run(AppTest.from_string("from sslapp.ui.pages import explore\nexplore.render()\n"))
    assert not [t for t in at.toggle if t.key == "explore_closeup"]  # no close-up of pictures for texts
    assert any("12 texts · 3 clusters" in c.value for c in at.caption)
    hovers = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["text"]
    assert len(hovers) == 12 and all("<br><i>" in h and len(h) < 400 for h in hovers)  # each text's start
    joined = " ".join(hovers)
    assert "simmer the onions slowly" in joined and "&lt;b&gt;bold?&lt;/b&gt;" in joined and "word119" not in joined
    assert "<b>bold?" not in joined  # escaped: plotly's hover reads HTML
    at.session_state["explore_selection"] = [2]
    run(at)
    assert texts[1] in _shown_texts(at)  # the clicked text, whole, in the side panel
    at.button(key="explore_similar").click()
    run(at)
    assert any("Texts most like" in m.value for m in at.markdown)
    assert at.button(key="similar_apply").label.startswith("Label ") and at.button(key="similar_grid-t-3")
    assert texts[2] in _shown_texts(at)  # its nearest neighbour, a text of the same topic, as a toggle
    _no_raw_markup(at)

    at = run(AppTest.from_string("from sslapp.ui.pages import explore\nexplore.render()\n"))
    at.session_state["explore_selection"] = [2, 5, 9]
    run(at)
    assert [texts[1], texts[4], texts[8]] == _shown_texts(at)  # the selection's texts, as toggles
    assert at.button(key="explore_grid-t-5")

    job = run_job_in_foreground(ws, "near_duplicates", {})
    assert job["status"] == "done" and job["result"]["groups"] == 3  # the notes differ by one number
    at = run(AppTest.from_string("from sslapp.ui.pages import data\ndata.render()\n"))
    words = " ".join(c.value for c in (*at.caption, *at.markdown))
    assert "3 groups to look at" in words and "3 texts · Keep one keeps" in words
    assert texts[1] in _shown_texts(at) and any(b.key.startswith("dup_one_") for b in at.button)
    _no_raw_markup(at)
