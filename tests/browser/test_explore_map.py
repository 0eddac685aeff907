"""Issues 4 and 12's browser test: the Explore page as a user meets it, in a 1440 x 900 window.

The map is most of the page; hovering a point names the file (never its folder), a click shows the
image large. The mouse then drags on the real plotly chart as a user's would: a box around the left
half is corrected in the grid (two thumbnails left out) before one bulk label, which reaches exactly
the kept images in the SQLite store; the colour mode, the selection and what was left out survive a
trip to another page, and undo takes the label back; a lasso around the right half labels those with
another class. Which points a shape should catch is worked out from the points' screen positions
that plotly itself reports, so the test knows the expected item ids before it drags. (One test: each
step starts where the last one left the page, as a user's session does, and the workspace, its map
and the page's first draw are paid for once.) A second test plays an embed job that saves its quick
pixel map and goes on: the page draws that map within a poll of the job's status line.
"""

from __future__ import annotations

from pathlib import Path

from map_driver import (
    MAP,
    MODEBAR_PX,
    apply_label,
    chart_points,
    choose_class,
    choose_option,
    click_point,
    drag,
    hover_point,
    image_workspace,
    inside,
    isolated_point,
    map_box,
    mapped_workspace,
    pick_tool,
    toggle_thumb,
)
from streamlit_driver import body_text, click_button, nav, open_page, screenshot, wait_for_text, wait_ready

from sslapp.cli.common import run_job_in_foreground
from sslapp.store.states import JobState
from sslapp.words import count

WIDTH, HEIGHT = 1440, 900


def shown_value(page, key) -> str:
    """What a selectbox shows: its input's text, or the placeholder when it has no value."""
    box = page.locator(f".st-key-{key} input").first
    return box.input_value() or f"placeholder: {box.get_attribute('placeholder')}"


def test_preview_then_box_leave_out_label_undo_and_lasso_on_the_real_map(app_factory, page, tmp_path):
    ws = mapped_workspace(tmp_path / "ws", tmp_path / "images", folder="secretclass")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    app = app_factory(ws.root)
    open_page(page, app, "explore")
    box = map_box(page)
    assert box["width"] >= 0.6 * WIDTH and box["height"] >= 500, box
    assert box["y"] < HEIGHT / 2  # on the first screen, not under the controls

    # 1) hover names the file, a click shows the image large
    info = chart_points(page)
    assert len(info["points"]) == 14
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

    # 2) box tool from the modebar: a rectangle around the left half; two left out, the rest labelled
    pick_tool(page, "select")
    info = chart_points(page)  # screen positions now that the page stands still
    pts = info["points"]
    xs = sorted(p[1] for p in pts)
    cut = (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
    left, top, w, h = info["plot"]
    y0, y1 = top + MODEBAR_PX, top + h - 2  # start below the modebar, which sits over the plot's top
    selected = sorted(p[0] for p in pts if p[1] < cut and y0 < p[2] < y1)
    n = len(selected)
    assert n >= 4
    drag(page, [(left + 2, y0), (cut, y1)])
    wait_for_text(page, f"{count(n, 'image')} from the map selection")
    screenshot(page, "explore-box-selection")
    out = selected[1:3]
    for thumb in out:
        toggle_thumb(page, thumb)
    wait_for_text(page, f"{n} selected, 2 left out → labelling {n - 2}")
    assert all(page.locator(f".st-key-explore_grid-c-out-{i}").count() == 1 for i in out)
    screenshot(page, "explore-left-out")
    # nothing labelled or predicted: no class is picked for the user, and the action waits for one
    assert page.locator(".st-key-explore_apply_label button").first.is_disabled()
    choose_class(page, "cat")
    apply_label(page, n - 2)
    wait_for_text(page, f"Labelled {count(n - 2, 'image')} as")
    labels = {r["item_id"]: (r["class_name"], r["source"]) for r in ws.store.labels()}
    assert sorted(labels) == sorted(set(selected) - set(out))
    assert set(labels.values()) == {("cat", "user")}

    # 3) colour mode, selection and what was left out are still there after another page
    choose_option(page, "explore_color", "Label")
    nav(page, "Data")
    nav(page, "Explore")
    wait_for_text(page, f"{count(n, 'image')} from the map selection")
    assert shown_value(page, "explore_color") == "Label"
    assert shown_value(page, "explore_cluster") == "Map selection"
    assert f"{n} selected, 2 left out → labelling {n - 2}" in body_text(page)

    # 4) undo takes the bulk label back
    click_button(page, "Undo", exact=True)
    wait_for_text(page, f"Undid bulk-label of {count(n - 2, 'image')}")
    assert ws.store.labels() == []

    # 5) lasso tool: a polygon around the right half, labelled with the other class
    pick_tool(page, "lasso")
    info = chart_points(page)  # positions after the reruns (uirevision keeps the view)
    pts = info["points"]
    left, top, w, h = info["plot"]
    y0, y1 = top + MODEBAR_PX, top + h - 2
    xs = sorted(p[1] for p in pts)
    x_left = (cut + min(x for x in xs if x > cut)) / 2  # off the box's edge: grabbing it would resize the box
    poly = [(left + w - 2, y0), (left + w - 2, y1), (x_left, y1), (x_left, y0)]
    expected_lasso = sorted(p[0] for p in pts if inside(poly, p[1], p[2]))
    assert expected_lasso and not set(expected_lasso) & set(selected)
    drag(page, [*poly, (poly[0][0] - 20, poly[0][1] + 5)], steps=8)
    wait_for_text(page, f"{count(len(expected_lasso), 'image')} from the map selection")
    choose_class(page, "dog")
    apply_label(page, len(expected_lasso))
    wait_for_text(page, f"Labelled {count(len(expected_lasso), 'image')} as")
    screenshot(page, "explore-lasso-selection")
    labels = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
    assert labels == {i: "dog" for i in expected_lasso}


def test_the_first_pixel_map_is_drawn_while_the_embed_job_goes_on(app_factory, page, tmp_path):
    """Issue 22: an upload's embed job saves a quick pixel map within seconds, then computes the chosen
    embedding's map. The page polls the job's status line every second and draws the first map as soon
    as it is saved, with the job's line still above it, without waiting for the job to end."""
    import os

    ws = image_workspace(tmp_path / "ws", tmp_path / "images")
    job = ws.store.enqueue_job("embed", {"clusters": "kmeans", "k": None, "provisional": False})
    assert ws.store.claim_job(job, os.getpid())["status"] == "running"  # this test plays the worker
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    try:
        open_page(page, app_factory(ws.root), "explore")
        wait_for_text(page, "Computing the map")
        assert page.locator(".st-key-explore_map").count() == 0
        assert run_job_in_foreground(ws, "embed", {"provisional": True})["status"] == "done"  # the job's first map
        page.locator(f"{MAP} .js-plotly-plot").wait_for(timeout=15_000)  # a poll or two, no click
        assert len(chart_points(page)["points"]) == 14
        assert "Computing the map" in body_text(page)  # the job goes on, and says so
    finally:
        ws.store.finish_job(job, JobState.CANCELLED)
