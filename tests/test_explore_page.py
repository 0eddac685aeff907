"""The Explore page in Streamlit's AppTest: map status, a selection labelled in one action, undo; images
left out of a selection before it is labelled; state that survives a page switch or a new map."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from embed_helpers import make_workspace
from streamlit.testing.v1 import AppTest

APP = "from sslapp.ui.pages import explore\nexplore.render()\n"


@pytest.fixture
def page(tmp_path, monkeypatch):
    ws, truth = make_workspace(tmp_path, per_class=4)  # 12 images: the map uses PCA, no UMAP compile
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    ws.store.set_setting("features.starts", ["patches"])  # fast; the ImageNet start has its own tests
    return ws, truth


def run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.message for e in at.exception]
    return at


def apply_class(at: AppTest, name: str) -> AppTest:
    """Pick `name` in Explore's class picker and press the label button, each followed by a run."""
    at.selectbox(key="explore_class").set_value(name)
    run(at)
    at.button(key="explore_apply_label").click()
    return run(at)


def test_no_map_yet_offers_to_compute(page):
    at = run(AppTest.from_string(APP))
    assert any("no map yet" in i.value for i in at.info)
    assert at.button(key="explore_embed").label == "Compute map"


def test_selection_from_session_state_is_labelled_in_one_action_and_undone(page):
    from sslapp.cli.common import run_job_in_foreground

    ws, truth = page
    assert run_job_in_foreground(ws, "embed", {"k": 3})["status"] == "done"
    at = run(AppTest.from_string(APP))
    assert any("**Embedding:** patch dictionary of your images" in c.value for c in at.caption)
    assert any("Click a point to see its image" in i.value for i in at.info)  # nothing selected: a hint
    assert at.button(key="explore_apply_label").disabled

    red = [r["id"] for r in ws.store.items() if truth[r["source"]] == "red"]
    at.session_state["explore_selection"] = red
    run(at)
    assert at.button(key="explore_apply_label").label == f"Label {len(red)} selected"
    # an empty new-class name is refused with a message
    apply_class(at, "+ New class…")
    assert any("Type a name" in w.value for w in at.warning) and ws.store.labels() == []
    at.text_input(key="explore_new_class").input("red things")
    run(at)
    at.button(key="explore_apply_label").click()
    run(at)
    assert {r["item_id"] for r in ws.store.labels() if r["class_name"] == "red things"} == set(red)
    assert any("Labelled 4 images" in s.value for s in at.success)

    # the label filter narrows the grid, colour by label works, remove and undo are one click each
    at.selectbox(key="explore_color").set_value("label")
    at.selectbox(key="explore_label_filter").set_value("Unlabelled")
    run(at)
    assert any("match the label filter" in i.value for i in at.info)
    at.selectbox(key="explore_label_filter").set_value("All")
    run(at)
    at.button(key="explore_remove_labels").click()
    run(at)
    assert ws.store.labels() == []
    at.button(key="explore_undo").click()
    run(at)
    assert len(ws.store.labels()) == 4
    at.button(key="explore_undo").click()  # undo the remove, then the label
    run(at)
    at.button(key="explore_undo").click()
    run(at)
    assert ws.store.labels() == []

    # a picked cluster fills the grid without a map selection; the close-up draws images
    at.session_state["explore_selection"] = []
    at.selectbox(key="explore_cluster").set_value(0)
    at.toggle(key="explore_closeup").set_value(True)
    run(at)
    assert any("images from the cluster 0" in m.value for m in at.markdown)
    assert not at.exception


def test_stale_map_says_so(page, tmp_path):
    from embed_helpers import write_images

    from sslapp.cli.common import run_job_in_foreground
    from sslapp.ingest.ingest import ingest

    ws, _ = page
    assert run_job_in_foreground(ws, "embed", {"provisional": True})["status"] == "done"
    write_images(tmp_path / "more", per_class=1, seed=7)
    ingest(ws, [tmp_path / "more"], workers=1)
    at = run(AppTest.from_string(APP))
    assert any("Stale map" in m.value and "3 images added" in m.value for m in at.markdown)
    assert at.button(key="explore_embed").label.startswith("Re-embed")


def mapped(page):
    """The page's workspace with a provisional (pixel PCA) map: seconds, no torch."""
    from sslapp.cli.common import run_job_in_foreground

    ws, truth = page
    assert run_job_in_foreground(ws, "embed", {"provisional": True})["status"] == "done"
    ws.store.class_id("cat", create=True)
    ws.store.class_id("dog", create=True)
    return ws, truth, [r["id"] for r in ws.store.items()]


def test_a_click_previews_one_image_and_hover_names_files_without_their_folder(page):
    ws, truth, ids = mapped(page)
    at = run(AppTest.from_string(APP))
    item = ws.store.item(ids[0])
    name = Path(item["source"]).name
    folder = Path(item["source"]).parent.name
    hover = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["text"]
    assert hover[0].startswith(f"<b>{name}</b> · #{ids[0]}<br>label: — · cluster")
    assert not any(f"{folder}/" in h for h in hover)  # the class folder would give the answer away

    at.session_state["explore_selection"] = [ids[0]]  # what a click on one point leaves
    run(at)
    texts = [m.value for m in at.markdown]
    assert f"**{name}** · #{ids[0]}" in texts and not any(f"{folder}/" in t for t in texts)
    assert any("Cluster: **cluster" in t and "Label: **—**" in t for t in texts)
    assert len(at.image) == 1  # the image itself, large (no grid for a single image)
    assert at.button(key="explore_apply_label").label == "Label 1 selected"
    # no label, no classifier: no class is picked for the user, and the action waits for one
    assert at.selectbox(key="explore_class").value is None and at.button(key="explore_apply_label").disabled
    apply_class(at, "cat")
    assert [(r["item_id"], r["class_name"]) for r in ws.store.labels()] == [(ids[0], "cat")]
    assert any("Label: **cat**" in m.value for m in at.markdown)


def test_left_out_images_are_not_labelled(page):
    ws, _, ids = mapped(page)
    at = run(AppTest.from_string(APP))
    at.session_state["explore_selection"] = ids[:8]
    run(at)
    assert at.button(key="explore_apply_label").label == "Label 8 selected"
    out = [ids[1], ids[4]]
    for i in out:
        at.button(key=f"explore_grid-t-{i}").click()
        run(at)
    assert at.button(key="explore_apply_label").label == "Label 6 selected"
    assert any("**8** selected, **2** left out → labelling **6**" in m.value for m in at.markdown)
    assert at.button(key=f"explore_grid-t-{ids[1]}").label.startswith("✕")
    apply_class(at, "cat")
    assert {r["item_id"] for r in ws.store.labels()} == set(ids[:8]) - set(out)

    # invert: the two left out are the ones kept now, labelled with the other class
    at.button(key="explore_grid-invert").click()
    run(at)
    assert at.button(key="explore_apply_label").label == "Label 2 selected"
    apply_class(at, "dog")
    assert sorted(r["item_id"] for r in ws.store.labels() if r["class_name"] == "dog") == sorted(out)
    # a second click takes an image back; "leave all out" disables the action; reset keeps them all
    at.button(key=f"explore_grid-t-{ids[0]}").click()
    run(at)
    assert at.button(key="explore_apply_label").label == "Label 3 selected"
    at.button(key="explore_grid-none").click()
    run(at)
    assert at.button(key="explore_apply_label").disabled
    at.button(key="explore_grid-reset").click()
    run(at)
    assert at.button(key="explore_apply_label").label == "Label 8 selected"
    # undo still works, one action at a time
    at.button(key="explore_undo").click()
    run(at)
    assert len(ws.store.labels()) == 6 and all(r["class_name"] == "cat" for r in ws.store.labels())
    at.button(key="explore_undo").click()
    run(at)
    assert ws.store.labels() == []
    # another selection starts with nothing left out
    at.session_state["explore_selection"] = ids[2:6]
    run(at)
    assert at.button(key="explore_apply_label").label == "Label 4 selected"


SWITCH_APP = ("import streamlit as st\nfrom sslapp.ui.pages import explore\n"
              "if st.session_state.get('_page', 'explore') == 'explore':\n    explore.render()\n"
              "else:\n    st.write('another page')\n")


def test_view_state_survives_a_page_switch_and_a_new_map_clears_the_selection(page):
    ws, _, ids = mapped(page)
    at = run(AppTest.from_string(SWITCH_APP))
    at.session_state["explore_selection"] = ids[:5]
    at.selectbox(key="explore_color").set_value("label")
    at.number_input(key="explore_k").set_value(4)
    run(at)
    at.button(key=f"explore_grid-t-{ids[2]}").click()
    run(at)
    at.session_state["_page"] = "other"  # Explore's widgets are not drawn: Streamlit drops their state
    run(at)
    at.session_state["_page"] = "explore"
    run(at)
    assert at.selectbox(key="explore_color").value == "label"
    assert at.number_input(key="explore_k").value == 4
    assert at.button(key="explore_apply_label").label == "Label 4 selected"  # 5 selected, 1 left out

    # re-embedding makes a new map artifact: the old selection does not outlive the map it was made on
    art = ws.store.latest_artifact("map")
    copy = art["path"].replace(".npz", "-again.npz")
    shutil.copy(ws.root / art["path"], ws.root / copy)
    ws.store.add_artifact("map", copy, art["meta"])
    run(at)
    assert at.session_state["explore_selection"] == []
    assert at.button(key="explore_apply_label").label == "Label 0 selected"
    assert any("Click a point to see its image" in i.value for i in at.info)


GRID_APP = """
import os
import streamlit as st
from sslapp.ui.selection_grid import selection_grid
from sslapp.workspace import open_workspace

ws = open_workspace(os.environ["SSLAPP_WORKSPACE"])
ids = st.session_state.get("ids") or []
kept = selection_grid(ws, ids, "more", captions={i: "a-long-class-name" for i in ids[:1]}, page_size=5)
st.write(f"kept {kept}")
"""


def test_the_selection_grid_on_its_own_pages_and_returns_the_kept_ids(page):
    ws, _ = page
    ids = [r["id"] for r in ws.store.items()][::-1]  # any order: it is kept
    at = run(AppTest.from_string(GRID_APP))
    assert at.markdown[-1].value == "kept []"
    at.session_state["ids"] = ids
    run(at)
    assert at.markdown[-1].value == f"kept {ids}"
    assert len(at.get("pagination")) == 1  # 12 images, 5 a page
    toggles = [b for b in at.button if b.key.startswith("more-t-")]
    assert [b.key for b in toggles] == [f"more-t-{i}" for i in ids[:5]]
    assert toggles[0].label == "a-long-class-name" and toggles[1].label == "—"
    at.button(key=f"more-t-{ids[1]}").click()
    run(at)
    assert at.markdown[-1].value == f"kept {[i for i in ids if i != ids[1]]}"
    assert at.button(key=f"more-t-{ids[1]}").label == "✕ —"
    at.button(key="more-invert").click()
    run(at)
    assert at.markdown[-1].value == f"kept {[ids[1]]}"
    at.session_state["ids"] = ids[:3]  # another list: nothing left out
    run(at)
    assert at.markdown[-1].value == f"kept {ids[:3]}"


def test_figures_carry_item_ids_and_draw_thumbnails(page):
    import numpy as np

    from sslapp.ui.common import thumb_path
    from sslapp.ui.map import (
        MAX_CLOSEUP,
        SVG_MAX_POINTS,
        categorical,
        closeup_figure,
        map_figure,
        selected_item_ids,
    )

    ws, _ = page
    items = ws.store.items()
    ids = np.array([r["id"] for r in items])
    xy = np.random.default_rng(0).normal(size=(len(ids), 2)).astype(np.float32)
    coloring = categorical(np.arange(len(ids)) % 3 - 1, ["a", "b"], "label")
    fig = map_figure(xy, ids, coloring)
    assert len(fig.data) == 1 and fig.data[0].type == "scatter"  # a small map is SVG, a big one WebGL
    big = np.arange(SVG_MAX_POINTS + 1)
    assert map_figure(np.zeros((len(big), 2), np.float32), big, categorical(big % 2, ["a", "b"], "label")).data[0].type == "scattergl"
    assert list(fig.data[0].customdata) == list(ids)
    legend = fig.layout.annotations[0]
    assert "a (4)" in legend.text and "none (4)" in legend.text
    # the legend sits in the right margin and the modebar in the top one: neither covers a point
    assert legend.x == 1.0 and legend.xanchor == "left" and fig.layout.margin.r >= 60
    assert fig.layout.margin.t >= 30 and fig.layout.height >= 600
    close = closeup_figure(xy, ids, [thumb_path(ws, r) for r in items])
    assert len(close.layout.images) == len(ids)
    assert all(im.source.startswith("data:image/jpeg;base64,") for im in close.layout.images)
    with pytest.raises(ValueError, match="at most"):
        closeup_figure(np.zeros((MAX_CLOSEUP + 1, 2)), np.arange(MAX_CLOSEUP + 1), [""] * (MAX_CLOSEUP + 1))
    # a streamlit selection event: ids come from customdata (scalar or list), junk is ignored
    event = {"selection": {"points": [{"customdata": 5}, {"customdata": [7]}, {"x": 1.0}, {"customdata": 5}]}}
    assert selected_item_ids(event) == [5, 7]
    assert selected_item_ids({"selection": {"points": []}}) == [] and selected_item_ids(None) == []
