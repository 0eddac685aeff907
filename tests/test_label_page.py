"""The Label page in AppTest: class buttons (keys 1-9), skip, undo, progress, class management."""

from __future__ import annotations

import time

import pytest
from embed_helpers import make_workspace
from streamlit.testing.v1 import AppTest

APP = "from sslapp.ui.pages import label\nlabel.render()\n"


@pytest.fixture
def ws(tmp_path, monkeypatch):
    ws, _ = make_workspace(tmp_path, per_class=3)
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    return ws


def run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.message for e in at.exception]
    return at


def current_item(at: AppTest) -> int:
    return int(next(c.value for c in at.caption if c.value.startswith("#") and " · " in c.value)[1:].split(" ")[0])


def test_keyboard_flow_skip_undo_and_progress(ws):
    at = run(AppTest.from_string(APP))
    assert "0 labelled · 0 classes" in at.markdown[0].value
    for name in ("cat", "dog"):
        at.text_input(key="label_new_class_name").input(name)
        run(at)
        at.button(key="label_add_class").click()
        run(at)
    cat, dog = ws.store.class_id("cat"), ws.store.class_id("dog")
    assert at.button(key=f"label_class_{cat}").label == "1 · cat"  # the 1 key
    first = current_item(at)
    at.button(key=f"label_class_{cat}").click()
    run(at)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {first: "cat"}  # written at once
    second = current_item(at)
    assert second != first
    at.button(key=f"label_class_{dog}").click()
    run(at)
    assert "2 labelled · 2 classes · 2 with fewer than 2 labels" in at.markdown[0].value
    third = current_item(at)
    at.button(key="label_skip").click()
    run(at)
    assert third in ws.store.skipped_ids() and current_item(at) != third
    at.button(key="label_undo").click()  # undo the skip: the image comes back
    run(at)
    assert third not in ws.store.skipped_ids() and current_item(at) == third
    at.button(key="label_undo").click()  # then undo the dog label
    run(at)
    assert {r["item_id"] for r in ws.store.labels()} == {first}

    # a fresh session (a refresh, another tab) sees the same database state
    other = run(AppTest.from_string(APP))
    assert "1 labelled" in other.markdown[0].value


def test_suggestions_drive_the_queue(ws):
    ids = [r["id"] for r in ws.store.items()]
    ws.store.save_suggestions([(ids[5], "margin", "the classifier hesitates between cat and dog")])
    at = run(AppTest.from_string(APP))
    assert current_item(at) == ids[5]
    assert any("hesitates" in c.value for c in at.caption)


def test_rename_merge_delete_with_confirmation(ws):
    items = [r["id"] for r in ws.store.items()]
    a, b = ws.store.class_id("a", create=True), ws.store.class_id("b", create=True)
    ws.store.set_labels(items[:2], a)
    ws.store.set_labels(items[2:3], b)
    at = run(AppTest.from_string(APP))
    at.selectbox(key="label_rename_from").set_value("a")
    at.text_input(key="label_rename_to").input("apple")
    at.button(key="label_rename").click()
    run(at)
    assert ws.store.class_id("apple") == a
    at.selectbox(key="label_rename_from").set_value("apple")
    at.text_input(key="label_rename_to").input("b")
    at.button(key="label_rename").click()
    run(at)
    assert any("already exists" in w.value for w in at.warning)  # refused with a message

    at.selectbox(key="label_merge_from").set_value("b")
    at.selectbox(key="label_merge_into").set_value("apple")
    at.button(key="label_merge").click()
    run(at)
    assert ws.store.label_counts() == {"apple": 3}

    at.selectbox(key="label_delete_name").set_value("apple")
    at.button(key="label_delete").click()
    run(at)
    assert ws.store.label_counts() == {"apple": 3}  # asks first
    assert any("Delete **apple**" in w.value for w in at.warning)
    at.button(key="label_delete_confirm").click()
    run(at)
    assert ws.store.label_counts() == {} and ws.store.labels() == []
    assert any(h["action"] == "delete-class" for h in ws.store.label_history())  # history kept


def test_two_tabs_on_the_same_image_keep_the_first_label(ws):
    cat, dog = ws.store.class_id("cat", create=True), ws.store.class_id("dog", create=True)
    tab_a, tab_b = run(AppTest.from_string(APP)), run(AppTest.from_string(APP))
    shown = current_item(tab_a)
    assert current_item(tab_b) == shown
    tab_a.button(key=f"label_class_{cat}").click()
    run(tab_a)
    tab_b.button(key=f"label_class_{dog}").click()  # tab B still shows the same image
    run(tab_b)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {shown: "cat"}
    assert any("labelled 'cat' elsewhere" in c.value for c in tab_b.caption)
    assert current_item(tab_b) != shown
    tab_b.button(key=f"label_class_{dog}").click()  # and its next key press labels its next image
    run(tab_b)
    assert sorted(r["class_name"] for r in ws.store.labels()) == ["cat", "dog"]


def test_suggest_button_fills_the_queue_with_reasons(ws):
    from sslapp.jobs.worker import run_worker

    at = run(AppTest.from_string(APP))
    assert "No active-learning suggestions yet" in " ".join(c.value for c in at.caption)
    at.number_input(key="label_suggest_budget").set_value(4)
    at.selectbox(key="label_suggest_strategy").set_value("typiclust")
    at.button(key="label_suggest").click()
    run(at)
    job = ws.store.jobs(kind="suggest", limit=1)[0]
    assert job["params"] == {"budget": 4, "strategy": "typiclust"}
    run_worker(ws, idle_exit_s=0.1, max_jobs=1, warm_up=False)  # unless the page's own worker has it
    deadline = time.monotonic() + 120
    while ws.store.job_status(job["id"]) != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ws.store.job(job["id"])["status"] == "done", ws.store.job(job["id"])
    at = run(at)
    suggested = [s["item_id"] for s in ws.store.open_suggestions()]
    assert len(suggested) == 4 and current_item(at) == suggested[0]
    assert any(c.value.startswith("Why this one: typiclust:") for c in at.caption)
