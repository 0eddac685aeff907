"""The Label page in AppTest, on real SQLite workspaces: the classifier's guess with its one key (A), redo
(Shift+U) and the label history read from the store (the same after a reload), the class panel in every
state of the page, and no button text cut with many long class names. The store's redo itself is
tests/test_store.py's."""

from __future__ import annotations

import pytest
from embed_helpers import make_workspace
from streamlit.testing.v1 import AppTest
from test_label_page import current_item, run  # the Label page tests' helpers

from sslapp.workspace import open_workspace

APP = "from sslapp.ui.pages import label\nlabel.render()\n"


@pytest.fixture
def ws(tmp_path, monkeypatch):
    ws, _ = make_workspace(tmp_path, per_class=2)
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    return ws


def press(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click()
    return run(at)


def keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def history(at: AppTest) -> list[str]:
    """The history rows as drawn, newest first (each starts with its clock time)."""
    start = next(i for i, c in enumerate(at.caption) if c.value.startswith("History"))
    return [c.value for c in at.caption[start + 1:] if c.value[:2].isdigit() or c.value.startswith("~~")]


def test_model_says_and_a_accepts_it_as_a_class_key_would(ws):
    cat, dog = ws.store.class_id("cat", create=True), ws.store.class_id("dog", create=True)
    ids = [r["id"] for r in ws.store.items()]
    at = run(AppTest.from_string(APP))
    first = current_item(at)
    assert not any("Model says" in m.value for m in at.markdown)  # no classifier yet: nothing, and no A button
    assert f"label_{first}_accept" not in keys(at)

    run_id = ws.store.create_run("finetune", {})  # what the finetune job stores: a guess for every image but one
    ws.store.save_predictions(run_id, [(i, dog, 0.87) for i in ids if i != first])
    run(at)
    assert current_item(at) == first and f"label_{first}_accept" not in keys(at)  # this one has no guess
    press(at, f"label_{first}_class_{cat}")
    second = current_item(at)
    assert any(m.value == "Model says: **dog** (87%)" for m in at.markdown)
    accept = at.button(key=f"label_{second}_accept")
    assert accept.proto.shortcut == "a" and accept.label == "Accept"
    assert all(b.proto.type != "primary" for b in at.button if "_class_" in b.key)  # no class picked in advance
    accept.click()
    run(at)
    # written at once, as the dog key writes it: same source, annotator and undoable action
    rows = {r["item_id"]: (r["class_name"], r["source"], r["annotator"]) for r in ws.store.labels()}
    assert rows == {first: ("cat", "user", "you"), second: ("dog", "user", "you")}
    assert ws.store.label_history(1)[0]["action"] == "label"
    assert current_item(at) not in (first, second)
    assert any(c.value == f"Last: #{second} → dog" for c in at.caption)
    press(at, "label_undo")
    assert current_item(at) == second and second not in {r["item_id"] for r in ws.store.labels()}


def test_redo_and_a_history_that_survives_a_reload(ws):
    cat, dog = ws.store.class_id("cat", create=True), ws.store.class_id("dog", create=True)
    at = run(AppTest.from_string(APP))
    first = current_item(at)
    press(at, f"label_{first}_class_{cat}")
    second = current_item(at)
    press(at, f"label_{second}_skip")
    assert at.button(key="label_redo").disabled  # nothing undone yet
    press(at, "label_undo")  # the skip
    press(at, "label_undo")  # the cat label
    assert ws.store.labels() == [] and not ws.store.skipped_ids()
    redo = at.button(key="label_redo")
    assert not redo.disabled and redo.proto.shortcut == "shift+u"
    press(at, "label_redo")  # the cat label again, then the skip
    assert {r["item_id"]: (r["class_name"], r["source"]) for r in ws.store.labels()} == {first: ("cat", "user")}
    assert any(c.value == "Last: Redid label of 1 image" for c in at.caption)
    press(at, "label_redo")
    assert ws.store.skipped_ids() == {second} and at.button(key="label_redo").disabled
    press(at, "label_undo")  # the skip again; then a new label leaves nothing to redo
    assert current_item(at) == second and not at.button(key="label_redo").disabled
    press(at, f"label_{second}_class_{dog}")
    assert at.button(key="label_redo").disabled

    # a reload (a new session): the history is the store's, each row with its item, class and time
    fresh = run(AppTest.from_string(APP))
    rows = history(fresh)
    assert [r.split(" · ", 1)[1] for r in rows] == [f"#{second} → dog", f"#{first} → cat"]
    older = ws.store.label_actions()[1]["action_id"]
    press(fresh, f"label_history_{older}")  # its own Undo, though another session made it
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {second: "dog"}
    assert history(fresh)[1] == f"~~{rows[1]}~~ undone" and fresh.button(key=f"label_history_{older}").label == "Redo"
    press(fresh, f"label_history_{older}")
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {first: "cat", second: "dog"}


def test_the_class_panel_is_there_in_every_state_of_the_page(tmp_path, monkeypatch):
    empty = open_workspace(tmp_path / "empty")
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(empty.root))
    at = run(AppTest.from_string(APP))  # no images yet: classes can be made already
    at.text_area(key="label_new_class_name").input("cat, dog")
    press(at, "label_add_class")
    assert [c["name"] for c in empty.store.classes()] == ["cat", "dog"]

    ws, _ = make_workspace(tmp_path / "full", per_class=1)
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    ws.store.set_labels([r["id"] for r in ws.store.items()], ws.store.class_id("cat", create=True))
    at = run(AppTest.from_string(APP))  # every image labelled
    assert any("is labelled or skipped" in s.value for s in at.success)
    at.text_area(key="label_new_class_name").input("bird")
    press(at, "label_add_class")
    at.selectbox(key="label_rename_from").set_value("bird")
    at.text_input(key="label_rename_to").input("owl")
    press(at, "label_rename")
    assert ws.store.label_counts() == {"cat": 3, "owl": 0}


def test_no_button_text_is_cut_with_many_long_class_names(ws):
    names = [f"class {i}: a long descriptive name that needs more than one line" for i in range(12)]
    ws.store.add_classes(names)
    ids = [c["id"] for c in ws.store.classes()]
    items = [r["id"] for r in ws.store.items()]
    ws.store.set_labels(items[:1], ids[0])  # a history row, and a class whose deletion asks first
    ws.store.save_predictions(ws.store.create_run("finetune", {}), [(i, ids[11], 0.5) for i in items])
    at = run(AppTest.from_string(APP))
    at.selectbox(key="label_delete_name").set_value(names[0])
    press(run(at), "label_delete")
    shown = current_item(at)
    assert {f"label_{shown}_accept", "label_delete_confirm", "label_redo"} <= keys(at)
    assert {f"label_{shown}_class_{i}" for i in ids} <= keys(at)
    assert [b.key for b in at.button if not b.proto.wrap] == []  # every button wraps its text instead
