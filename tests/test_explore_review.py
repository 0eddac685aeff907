"""The Explore page's bulk review and its first map (issue 22), in Streamlit's AppTest on real workspaces:
"Show: All images" with a class or "Model disagrees" puts those labels in the grid (relabelled in bulk,
with leave-outs; the map's colours follow), and the quick pixel map an embed job saves first is drawn
while the job goes on."""

from __future__ import annotations

import json

import pytest
from embed_helpers import make_workspace
from streamlit.testing.v1 import AppTest
from test_explore_page import APP, apply_class, run


@pytest.fixture
def ws(tmp_path, monkeypatch):
    ws, _ = make_workspace(tmp_path, per_class=4)  # 12 images: the map uses PCA, no UMAP compile
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    ws.store.set_setting("features.starts", ["patches"])  # fast; the ImageNet start has its own tests
    return ws


def mapped(ws):
    """`ws` with a provisional (pixel PCA) map, and the classes cat and dog: its item ids."""
    from sslapp.cli.common import run_job_in_foreground

    assert run_job_in_foreground(ws, "embed", {"provisional": True})["status"] == "done"
    ws.store.class_id("cat", create=True)
    ws.store.class_id("dog", create=True)
    return [r["id"] for r in ws.store.items()]


def grid_ids(at: AppTest) -> list[int]:
    """The item ids of the selection grid's toggles on the page, in their order."""
    return [int(b.key.rsplit("-", 1)[1]) for b in at.button if b.key.startswith("explore_grid-t-")]


def marker_codes(at: AppTest) -> list[int]:
    """The map's colour codes per point (0: none, 1 + the class's position), as the browser gets them."""
    import base64

    import numpy as np

    color = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["marker"]["color"]
    if isinstance(color, dict):  # a typed array: {"dtype": "u1", "bdata": base64}
        return np.frombuffer(base64.b64decode(color["bdata"]), np.dtype(color["dtype"])).tolist()
    return list(color)


def test_all_images_with_a_class_or_model_disagrees_filter_puts_those_labels_in_the_grid(ws):
    from sslapp.maps.read import load_map

    ids = mapped(ws)
    cat, dog = ws.store.class_id("cat"), ws.store.class_id("dog")
    ws.store.set_labels(ids[:5], cat, source="user")
    ws.store.set_labels(ids[5:8], dog, source="user")
    at = run(AppTest.from_string(APP))
    at.selectbox(key="explore_color").set_value("label")
    at.selectbox(key="explore_cluster").set_value("all")
    at.selectbox(key="explore_label_filter").set_value("cat")
    run(at)
    assert at.selectbox(key="explore_cluster").format_func("all") == "All images"
    assert grid_ids(at) == ids[:5]  # every cat label, though nothing is selected on the map
    assert any("**5** images in the workspace · filter: cat" in m.value for m in at.markdown)
    assert at.selectbox(key="explore_class").value == "cat"  # the picker's default: what they all are
    at.selectbox(key="explore_label_filter").set_value("Labelled")
    run(at)
    assert grid_ids(at) == ids[:8]

    # no classifier yet: the filter says what to do instead of showing an empty grid
    at.selectbox(key="explore_label_filter").set_value("Model disagrees")
    run(at)
    assert grid_ids(at) == []
    assert any("Check my labels" in i.value and "train a classifier" in i.value for i in at.info)
    # the newest classifier calls two cats dogs, agrees on the dogs, and has a guess for the unlabelled
    old = ws.store.create_run("finetune", {})
    ws.store.save_predictions(old, [(i, dog, 0.9) for i in ids])  # an older run is not read
    new = ws.store.create_run("finetune", {})
    ws.store.save_predictions(new, [(i, dog if i in ids[:2] or i in ids[5:8] else cat, 0.8) for i in ids])
    run(at)
    assert grid_ids(at) == ids[:2]
    assert any("**2** images in the workspace · filter: Model disagrees" in m.value for m in at.markdown)
    # the picker opens on the class the model points to, not on the label in question
    assert at.selectbox(key="explore_class").value == "dog"
    # a label check (models that never saw each label) flags a dog label the classifier fitted: it joins them
    from sslapp.curate.read import REVIEW_SETTING

    rows = [{"item": ids[6], "path": "", "label": "dog", "suggested": "cat", "score": 0.1, "odds": 9.0, "flagged": True},
            {"item": ids[7], "path": "", "label": "dog", "suggested": "cat", "score": 0.4, "odds": 2.0, "flagged": False},
            {"item": ids[0], "path": "", "label": "dog", "suggested": "cat", "score": 0.1, "odds": 9.0, "flagged": True}]
    ws.store.set_setting(REVIEW_SETTING, {"rows": rows})  # ids[0]'s row checked a label it no longer has
    run(at)
    assert grid_ids(at) == sorted([*ids[:2], ids[6]])
    assert at.selectbox(key="explore_class").value == "dog"  # dog for two of the three
    ws.store.set_setting(REVIEW_SETTING, {"rows": rows[1:2]})  # a check that flags nothing: no label points away
    run(at)
    assert grid_ids(at) == ids[:2]

    # a bulk relabel with one left out: only the kept one changes, and the map's colours follow
    before = marker_codes(at)
    at.button(key=f"explore_grid-t-{ids[1]}").click()
    run(at)
    assert at.button(key="explore_apply_label").label == "Label 1 selected"
    apply_class(at, "dog")
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()}[ids[0]] == "dog"
    # the model agrees with the new label: one disagreement is left, shown large as a click shows one
    assert grid_ids(at) == [] and any(f"· #{ids[1]}" in m.value for m in at.markdown)
    assert at.button(key="explore_apply_label").label == "Label 1 selected"
    after = marker_codes(at)
    changed = [r for r, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert [int(load_map(ws).item_ids[r]) for r in changed] == [ids[0]]
    # Remove labels on what the grid shows, then undo: the label is back
    at.button(key="explore_remove_labels").click()
    run(at)
    assert ids[1] not in {r["item_id"] for r in ws.store.labels()}
    at.button(key="explore_undo").click()
    run(at)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()}[ids[1]] == "cat"


def test_the_first_map_is_drawn_while_the_embed_job_still_runs(ws):
    """An upload's embed job saves a quick pixel map, then goes on to the chosen embedding's map: the page
    draws the first one at once, under the job's status line."""
    import os

    from sslapp.cli.common import run_job_in_foreground

    job = ws.store.enqueue_job("embed", {"clusters": "kmeans", "k": None, "provisional": False})
    assert ws.store.claim_job(job, os.getpid())["status"] == "running"  # as the worker leaves it
    at = run(AppTest.from_string(APP))
    assert any("Computing the map" in i.value for i in at.info)
    assert not at.get("plotly_chart") and at.button(key="explore_embed").disabled
    # the job's first map (the worker saves it as this does: the pixels' PCA layout, an artifact)
    assert run_job_in_foreground(ws, "embed", {"provisional": True})["status"] == "done"
    run(at)
    assert any("Computing the map" in i.value for i in at.info)  # the job goes on, and says so
    assert len(at.get("plotly_chart")) == 1
    assert at.button(key="explore_apply_label").label == "Label 0 selected"


POLL_APP = """
import os
import streamlit as st
from sslapp.ui.pages import explore
from sslapp.workspace import open_workspace

ws = open_workspace(os.environ["SSLAPP_WORKSPACE"])
st.session_state["runs"] = st.session_state.get("runs", 0) + 1
art = ws.store.latest_artifact("map")
# the map the page drew on its last full run: a test sets an older one, a rerun draws the newest
drawn = st.session_state.pop("drawn", None if art is None else art["id"])
explore._job_progress(ws, st.session_state["job"], drawn)
"""


def test_the_job_line_reruns_the_page_once_a_newer_map_than_the_drawn_one_is_saved(ws):
    """The status line is a fragment that polls every second; between full runs it sees the map the
    page drew (its argument), so it must ask for the page's rerun itself when the job saves one."""
    import os

    from sslapp.cli.common import run_job_in_foreground

    job = ws.store.enqueue_job("embed", {"clusters": "kmeans", "k": None, "provisional": False})
    ws.store.claim_job(job, os.getpid())
    at = AppTest.from_string(POLL_APP)
    at.session_state["job"] = job
    run(at)
    assert at.session_state["runs"] == 1 and "Computing the map" in at.info[0].value
    run(at)
    assert at.session_state["runs"] == 2  # nothing new: no rerun
    assert run_job_in_foreground(ws, "embed", {"provisional": True})["status"] == "done"
    at.session_state["drawn"] = None  # drawn before the map existed
    run(at)
    assert at.session_state["runs"] == 4  # this run, and the page's rerun it asked for
    assert "Computing the map" in at.info[0].value
    run(at)
    assert at.session_state["runs"] == 5
