"""The Label page in AppTest: class buttons (keys 1-9, 0, letters), skip, per-tab undo, progress, class
management, and the queue: served in the order shown, refilled by the worker when it runs short."""

from __future__ import annotations

import time

import numpy as np
import pytest
from embed_helpers import make_workspace
from in_process_worker import start_worker_thread
from streamlit.testing.v1 import AppTest

APP = "from sslapp.ui.pages import label\nlabel.render()\n"


@pytest.fixture
def ws(tmp_path, monkeypatch):
    ws, _ = make_workspace(tmp_path, per_class=3)
    ws.store.set_setting("features.starts", ["pixels"])  # suggestions on the cheap start; ImageNet's has its own tests
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    return ws


def run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.message for e in at.exception]
    return at


def current_item(at: AppTest) -> int:
    return int(next(c.value for c in at.caption if c.value.startswith("#") and " · " in c.value)[1:].split(" ")[0])


def class_button(at: AppTest, class_id: int):
    """The button of a class for the image shown now (its key carries the image's id)."""
    return at.button(key=f"label_{current_item(at)}_class_{class_id}")


def up_next(at: AppTest) -> list[int]:
    return [int(c.value[1:]) for c in at.caption if c.value[1:].isdigit() and c.value.startswith("#")]


def add_classes(at: AppTest, text: str) -> AppTest:
    at.text_area(key="label_new_class_name").input(text)
    at.button(key="label_add_class").click()
    return run(at)


def test_keyboard_flow_skip_undo_and_progress(ws):
    at = run(AppTest.from_string(APP))
    assert "0 labelled · 0 classes" in at.markdown[0].value
    add_classes(at, "cat")
    assert "0 labelled · 1 class · 1 with fewer than 2 labels" in at.markdown[0].value  # not "1 classes"
    add_classes(at, "dog")
    cat, dog = ws.store.class_id("cat"), ws.store.class_id("dog")
    assert class_button(at, cat).label == "1 · cat"  # the 1 key
    first = current_item(at)
    class_button(at, cat).click()
    run(at)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {first: "cat"}  # written at once
    second = current_item(at)
    assert second != first
    class_button(at, dog).click()
    run(at)
    assert "2 labelled · 2 classes · 2 with fewer than 2 labels" in at.markdown[0].value
    third = current_item(at)
    at.button(key=f"label_{third}_skip").click()
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


def test_new_suggestions_do_not_swap_the_image_whose_more_like_this_is_open(ws):
    """A background refill arriving while More like this is open for the shown image keeps that image
    (the dialog belongs to it); once the dialog closes, the suggestions lead again."""
    ids = [r["id"] for r in ws.store.items()]
    at = run(AppTest.from_string(APP))
    shown = current_item(at)
    at.button(key=f"label_{shown}_similar").click()
    run(at)
    other = next(i for i in ids if i != shown)
    ws.store.save_suggestions([(other, "margin", "the classifier hesitates")])  # the worker's refill lands
    run(at)
    assert current_item(at) == shown
    at.session_state["similar_open"] = None  # the dialog's X
    run(at)
    assert current_item(at) == other


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

    # no class is picked for the user where an action moves many labels: Merge waits for both
    assert at.selectbox(key="label_merge_from").value is None and at.button(key="label_merge").disabled
    assert at.selectbox(key="label_delete_name").value is None and at.button(key="label_delete").disabled
    at.selectbox(key="label_merge_from").set_value("b")
    at.selectbox(key="label_merge_into").set_value("apple")
    run(at)
    at.button(key="label_merge").click()
    run(at)
    assert ws.store.label_counts() == {"apple": 3}

    at.selectbox(key="label_delete_name").set_value("apple")
    run(at)
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
    class_button(tab_a, cat).click()
    run(tab_a)
    class_button(tab_b, dog).click()  # tab B still shows the same image
    run(tab_b)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {shown: "cat"}
    assert any("labelled 'cat' elsewhere" in c.value for c in tab_b.caption)
    assert current_item(tab_b) != shown
    class_button(tab_b, dog).click()  # and its next key press labels its next image
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
    assert job["params"] == {"budget": 4, "strategy": "typiclust", "unlabelled": 9}
    run_worker(ws, idle_exit_s=0.1, max_jobs=1, warm_up=False)  # unless the page's own worker has it
    deadline = time.monotonic() + 120
    while ws.store.job_status(job["id"]) != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ws.store.job(job["id"])["status"] == "done", ws.store.job(job["id"])
    at = run(at)
    suggested = [s["item_id"] for s in ws.store.open_suggestions()]
    assert len(suggested) == 4 and current_item(at) == suggested[0]
    assert any(c.value.startswith("Why this one: typiclust:") for c in at.caption)


def test_many_classes_at_once_and_keys_past_nine(ws):
    at = run(AppTest.from_string(APP))
    add_classes(at, "a, b, c\nd\n e ,f,g,h, i, j, k,a")
    assert [c["name"] for c in ws.store.classes()] == list("abcdefghijk")
    assert any("Added 11 classes" in s.value for s in at.success)
    long = "automobile and other road vehicles with four or more wheels"
    add_classes(at, f"b, l, {long}")  # two new, one already there
    assert any("Already there: b" in s.value for s in at.success)
    ids = {c["name"]: c["id"] for c in ws.store.classes()}
    # a long name: the button wraps rather than cutting it, ends after a whole word, and its tooltip says it all
    button = class_button(at, ids[long])
    assert button.proto.wrap and button.label == "E · automobile and other road vehicles with…"
    assert long in button.help and all(class_button(at, i).proto.wrap for i in ids.values())
    assert class_button(at, ids["a"]).help == "Label as **a** (key 1)"
    assert class_button(at, ids["i"]).label == "9 · i"
    assert class_button(at, ids["j"]).label == "0 · j"  # the tenth class: key 0
    assert class_button(at, ids["k"]).label == "Q · k"  # then letters, never S (skip) or U (undo)
    assert class_button(at, ids["j"]).proto.shortcut == "0" and class_button(at, ids["l"]).proto.shortcut == "w"
    shown = current_item(at)
    class_button(at, ids["j"]).click()
    run(at)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {shown: "j"}


def test_an_implicit_class_emptied_by_undo_goes_a_made_one_stays(ws):
    bird = ws.store.class_id("bird", create=True, implicit=True)  # made on the way, as labelling on Explore does
    at = run(AppTest.from_string(APP))
    add_classes(at, "cow")
    cow = ws.store.class_id("cow")
    class_button(at, bird).click()
    run(at)
    at.button(key="label_undo").click()
    run(at)
    assert ws.store.label_counts() == {"cow": 0}  # no "bird (0)" left behind
    assert any("removed the now empty class bird" in c.value for c in at.caption)
    class_button(at, cow).click()
    run(at)
    at.button(key="label_undo").click()
    run(at)
    assert ws.store.label_counts() == {"cow": 0}  # made on purpose: it stays


def test_undo_undoes_this_tabs_action_not_another_tabs(ws):
    cat, dog = ws.store.class_id("cat", create=True), ws.store.class_id("dog", create=True)
    tab_a = run(AppTest.from_string(APP))
    a_item = current_item(tab_a)
    class_button(tab_a, cat).click()
    run(tab_a)
    tab_b = run(AppTest.from_string(APP))
    b_item = current_item(tab_b)
    assert b_item != a_item
    class_button(tab_b, dog).click()  # the newest action overall is tab B's
    run(tab_b)
    tab_a.button(key="label_undo").click()
    run(tab_a)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {b_item: "dog"}
    assert current_item(tab_a) == a_item  # the undone image comes back first
    tab_a.button(key="label_undo").click()
    run(tab_a)
    assert any("Nothing to undo in this tab" in c.value for c in tab_a.caption)
    assert {r["item_id"] for r in ws.store.labels()} == {b_item}  # tab B's label is not this tab's to undo


def test_a_late_second_press_for_a_labelled_image_does_nothing(ws):
    """Two quick key presses: the second arrives with the first image's id and must not touch the next image."""
    cat, dog = ws.store.class_id("cat", create=True), ws.store.class_id("dog", create=True)
    script = APP.replace("label.render()", "label.render()\nimport streamlit as st\n"
                         "press = st.session_state.pop('late_press', None)\n"
                         "if press: label._label(label.require_workspace(), *press)\n")
    at = run(AppTest.from_string(script))
    first = current_item(at)
    class_button(at, cat).click()
    run(at)
    nxt = current_item(at)
    at.session_state["late_press"] = (first, dog, "dog")  # the press the browser sent for the old image
    run(at)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {first: "cat"}
    assert current_item(run(at)) == nxt


def test_up_next_is_the_order_images_are_served_in(ws):
    """Suggestions first, then picks one per map cluster in turn; labelling the head serves the next shown."""
    cat = ws.store.class_id("cat", create=True)
    items = ws.store.items()
    ids = np.array([r["id"] for r in items], np.int64)
    path = ws.root / "embeddings" / "test-map.npz"
    path.parent.mkdir(exist_ok=True)
    np.savez(path, item_ids=ids, xy=np.zeros((len(ids), 2), np.float32),
             cluster=np.array([["red", "green", "blue"].index(r["source"].split("/")[0]) for r in items], np.int32))
    ws.store.add_artifact("map", str(path.relative_to(ws.root)), {"embedding_name": "test"})
    cluster_of = {r["id"]: r["source"].split("/")[0] for r in items}
    at = run(AppTest.from_string(APP))
    picks = [current_item(at), *up_next(at)]
    assert sorted(picks) == sorted(ids.tolist())
    caption = next(c.value for c in at.caption if c.value.startswith(f"#{picks[0]} · "))
    assert caption == f"#{picks[0]} · {items[list(ids).index(picks[0])]['source'].split('/')[-1]}"  # no folder
    assert sorted(cluster_of[i] for i in picks[:3]) == ["blue", "green", "red"]  # one per cluster in turn
    ws.store.save_suggestions([(picks[7], "margin", "hesitates"), (picks[4], "margin", "hesitates too")])
    run(at)
    shown = [current_item(at), *up_next(at)]
    assert shown == [picks[7], picks[4]] + [i for i in picks if i not in (picks[7], picks[4])]
    for expected in shown:
        assert current_item(at) == expected
        class_button(at, cat).click()
        run(at)
    assert not any(c.value.startswith("#") and " · " in c.value for c in at.caption)  # all served


def test_a_short_queue_asks_the_worker_for_the_next_batch_once(ws):
    cat = ws.store.class_id("cat", create=True)
    ids = [r["id"] for r in ws.store.items()]
    first = ws.store.enqueue_job("suggest", {"budget": 6, "strategy": "random"})  # the user's first batch
    ws.store.claim_job(first, pid=1)
    ws.store.finish_job(first, "done", {"count": 6})
    ws.store.save_suggestions([(i, "random", "picked at random") for i in ids[:6]])
    worker = start_worker_thread(ws, idle_exit_s=30.0)  # a real worker in this process: the page launches no other
    at = run(AppTest.from_string(APP))
    for _ in range(2):  # 6 open suggestions, then 5: not short yet
        assert len(ws.store.jobs(kind="suggest")) == 1
        class_button(at, cat).click()
        run(at)
    auto = [j for j in ws.store.jobs(kind="suggest") if j["id"] != first]  # 4 left: the next batch is asked for
    assert len(auto) == 1 and auto[0]["params"] == {"budget": 6, "strategy": "random", "auto": True, "unlabelled": 7}
    for _ in range(3):
        run(at)
    class_button(at, cat).click()
    run(at)
    assert len(ws.store.jobs(kind="suggest")) == 2  # never a second while one is queued or running
    notes = " ".join(c.value for c in at.caption)
    assert "the worker is choosing the next 6" in notes or ws.store.job_status(auto[0]["id"]) == "done", notes
    worker.join(120)
    assert ws.store.job(auto[0]["id"])["status"] == "done", ws.store.job(auto[0]["id"])
    run(at)
    fresh = [s["item_id"] for s in ws.store.open_suggestions()]
    assert len(fresh) == 6 and current_item(at) == fresh[0]  # the new batch leads the queue
    for _ in range(2):
        run(at)
    assert len(ws.store.jobs(kind="suggest")) == 2  # full again: nothing more asked
