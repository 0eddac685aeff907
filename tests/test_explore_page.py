"""The Explore page in Streamlit's AppTest: map status, a selection labelled in one action, undo."""

from __future__ import annotations

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


def test_no_map_yet_offers_to_compute(page):
    at = run(AppTest.from_string(APP))
    assert any("no map yet" in i.value for i in at.info)
    assert at.button(key="explore_embed").label == "Compute map"


def test_selection_from_session_state_is_labelled_in_one_action_and_undone(page):
    from sslapp.cli.common import run_job_in_foreground

    ws, truth = page
    assert run_job_in_foreground(ws, "embed", {"k": 3})["status"] == "done"
    at = run(AppTest.from_string(APP))
    assert any("**Embedding:** patch dictionary of your images" in m.value for m in at.markdown)
    assert any("Select points on the map" in i.value for i in at.info)  # nothing selected: a hint, no crash
    assert at.button(key="explore_apply_label").disabled

    red = [r["id"] for r in ws.store.items() if truth[r["source"]] == "red"]
    at.session_state["explore_selection"] = red
    run(at)
    assert at.button(key="explore_apply_label").label == f"Label {len(red)} selected"
    # an empty new-class name is refused with a message
    at.selectbox(key="explore_class").set_value("+ New class…")
    run(at)
    at.button(key="explore_apply_label").click()
    run(at)
    assert any("Type a name" in w.value for w in at.warning) and ws.store.labels() == []
    at.text_input(key="explore_new_class").input("red things")
    run(at)
    at.button(key="explore_apply_label").click()
    run(at)
    assert {r["item_id"] for r in ws.store.labels() if r["class_name"] == "red things"} == set(red)
    assert any("Labelled 4 image(s)" in s.value for s in at.success)

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
    assert any("image(s) from the cluster 0" in m.value for m in at.markdown)


def test_stale_map_says_so(page, tmp_path):
    from embed_helpers import write_images

    from sslapp.cli.common import run_job_in_foreground
    from sslapp.ingest.ingest import ingest

    ws, _ = page
    assert run_job_in_foreground(ws, "embed", {})["status"] == "done"
    write_images(tmp_path / "more", per_class=1, seed=7)
    ingest(ws, [tmp_path / "more"], workers=1)
    at = run(AppTest.from_string(APP))
    assert any("stale" in w.value and "3 image(s) added" in w.value for w in at.warning)
    assert at.button(key="explore_embed").label.startswith("Re-embed")


def test_figures_carry_item_ids_and_draw_thumbnails(page):
    import numpy as np

    from sslapp.ui.common import thumb_path
    from sslapp.ui.map import MAX_CLOSEUP, categorical, closeup_figure, map_figure, selected_item_ids

    ws, _ = page
    items = ws.store.items()
    ids = np.array([r["id"] for r in items])
    xy = np.random.default_rng(0).normal(size=(len(ids), 2)).astype(np.float32)
    coloring = categorical(np.arange(len(ids)) % 3 - 1, ["a", "b"], "label")
    fig = map_figure(xy, ids, coloring)
    assert len(fig.data) == 1 and fig.data[0].type == "scattergl"
    assert list(fig.data[0].customdata) == list(ids)
    assert "a (4)" in fig.layout.annotations[0].text and "none (4)" in fig.layout.annotations[0].text
    close = closeup_figure(xy, ids, [thumb_path(ws, r) for r in items])
    assert len(close.layout.images) == len(ids)
    assert all(im.source.startswith("data:image/jpeg;base64,") for im in close.layout.images)
    with pytest.raises(ValueError, match="at most"):
        closeup_figure(np.zeros((MAX_CLOSEUP + 1, 2)), np.arange(MAX_CLOSEUP + 1), [""] * (MAX_CLOSEUP + 1))
    # a streamlit selection event: ids come from customdata (scalar or list), junk is ignored
    event = {"selection": {"points": [{"customdata": 5}, {"customdata": [7]}, {"x": 1.0}, {"customdata": 5}]}}
    assert selected_item_ids(event) == [5, 7]
    assert selected_item_ids({"selection": {"points": []}}) == [] and selected_item_ids(None) == []
