"""Issue 12's browser tests: the Explore page as a user meets it, in a 1440 x 900 window.

The map is most of the page; hovering a point names the file (never its folder), a click shows the
image large; a box selection is corrected in the grid (two thumbnails left out) before one bulk
label, which reaches exactly the kept images in the SQLite store; the colour mode, the selection
and what was left out survive a trip to another page, and undo takes the label back.
"""

from __future__ import annotations

from pathlib import Path

from map_driver import (
    apply_label,
    chart_points,
    choose_class,
    choose_option,
    click_point,
    drag,
    hover_point,
    isolated_point,
    map_box,
    mapped_workspace,
    pick_tool,
    toggle_thumb,
)
from streamlit_driver import body_text, click_button, nav, open_page, screenshot, wait_for_text, wait_ready

WIDTH, HEIGHT = 1440, 900


def shown_value(page, key) -> str:
    """What a selectbox shows: its input's text, or the placeholder when it has no value."""
    box = page.locator(f".st-key-{key} input").first
    return box.input_value() or f"placeholder: {box.get_attribute('placeholder')}"


def test_the_map_fills_the_page_names_files_and_a_click_shows_the_image(app_factory, page, tmp_path):
    ws = mapped_workspace(tmp_path / "ws", tmp_path / "images", folder="secretclass")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    app = app_factory(ws.root)
    open_page(page, app, "explore")
    box = map_box(page)
    assert box["width"] >= 0.6 * WIDTH and box["height"] >= 500, box
    assert box["y"] < HEIGHT / 2  # on the first screen, not under the controls

    info = chart_points(page)
    item, x, y = isolated_point(info["points"])
    name = Path(ws.store.item(item)["source"]).name
    hover = hover_point(page, x, y)
    assert name in hover and f"#{item}" in hover and "label: —" in hover and "cluster" in hover, hover
    assert "secretclass" not in hover  # the folder would give the class away

    click_point(page, x, y)
    preview = page.locator(".st-key-explore_preview")
    preview.get_by_text(f"#{item}").wait_for()
    preview.locator("img").first.wait_for()  # the image itself, large
    wait_ready(page)
    text = preview.inner_text()
    assert name in text and "Cluster:" in text and "Label:" in text and "secretclass" not in text
    assert preview.locator("img").count() == 1 and preview.locator("img").bounding_box()["width"] >= 150
    assert "Label 1 selected" in page.locator(".st-key-explore_apply_label").inner_text()
    screenshot(page, "explore-preview")


def test_leave_two_out_of_a_box_selection_then_label_the_rest(app_factory, page, tmp_path):
    ws = mapped_workspace(tmp_path / "ws", tmp_path / "images")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    app = app_factory(ws.root)
    open_page(page, app, "data")
    nav(page, "Explore")
    pick_tool(page, "select")
    info = chart_points(page)
    left, top, w, h = info["plot"]
    selected = sorted(p[0] for p in info["points"])
    drag(page, [(left + 2, top + 2), (left + w - 2, top + h - 2)])  # a box around every point
    n = len(selected)
    wait_for_text(page, f"{n} image(s) from the map selection")

    out = selected[3:5]
    for item in out:
        toggle_thumb(page, item)
    wait_for_text(page, f"{n} selected, 2 left out → labelling {n - 2}")
    assert all(page.locator(f".st-key-explore_grid-c-out-{i}").count() == 1 for i in out)
    screenshot(page, "explore-left-out")
    choose_class(page, "cat")  # nothing labelled or predicted: no class is preselected
    apply_label(page, n - 2)
    wait_for_text(page, f"Labelled {n - 2} image(s) as")
    labels = {r["item_id"]: (r["class_name"], r["source"]) for r in ws.store.labels()}
    assert sorted(labels) == sorted(set(selected) - set(out))
    assert set(labels.values()) == {("cat", "user")}

    # colour mode, selection and what was left out are still there after another page
    choose_option(page, "explore_color", "Label")
    nav(page, "Data")
    nav(page, "Explore")
    wait_for_text(page, f"{n} image(s) from the map selection")
    assert shown_value(page, "explore_color") == "Label"
    assert shown_value(page, "explore_cluster") == "Map selection"
    assert f"{n} selected, 2 left out → labelling {n - 2}" in body_text(page)

    click_button(page, "Undo", exact=True)
    wait_for_text(page, f"Undid bulk-label of {n - 2} image(s)")
    assert ws.store.labels() == []
