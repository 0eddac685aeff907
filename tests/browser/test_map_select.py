"""Issue 4's browser test: box- and lasso-select points on the real plotly map, label them, check the DB.

The mouse drags on the chart exactly as a user's would. Which points a shape should catch is
worked out from the points' screen positions that plotly itself reports, so the test knows the
expected item ids before it drags.
"""

from __future__ import annotations

from map_driver import (
    MODEBAR_PX,
    apply_label,
    chart_points,
    choose_class,
    drag,
    inside,
    mapped_workspace,
    pick_tool,
)
from streamlit_driver import nav, open_page, screenshot, wait_for_text


def test_box_and_lasso_select_on_the_real_map_label_the_points(app_factory, page, tmp_path):
    ws = mapped_workspace(tmp_path / "ws", tmp_path / "images")
    app = app_factory(ws.root)
    open_page(page, app, "data")
    nav(page, "Explore")
    # 1) box tool from the modebar: a rectangle around the left half of the points
    pick_tool(page, "select")
    info = chart_points(page)  # screen positions now that the page stands still
    pts = info["points"]
    assert len(pts) == 14
    xs = sorted(p[1] for p in pts)
    cut = (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
    left, top, w, h = info["plot"]
    y0, y1 = top + MODEBAR_PX, top + h - 2  # start below the modebar, which sits over the plot's top
    expected_box = sorted(p[0] for p in pts if p[1] < cut and y0 < p[2] < y1)
    assert len(expected_box) >= 3
    drag(page, [(left + 2, y0), (cut, y1)])
    wait_for_text(page, f"{len(expected_box)} image(s) from the map selection")
    screenshot(page, "explore-box-selection")
    # nothing labelled or predicted: no class is picked for the user, and the action waits for one
    assert page.locator(".st-key-explore_apply_label button").first.is_disabled()
    choose_class(page, "cat")
    apply_label(page, len(expected_box))
    wait_for_text(page, f"Labelled {len(expected_box)} image(s) as")
    labels = {r["item_id"]: (r["class_name"], r["source"]) for r in ws.store.labels()}
    assert sorted(labels) == expected_box
    assert set(labels.values()) == {("cat", "user")}

    # 2) lasso tool: a polygon around the right half, labelled with the other class
    pick_tool(page, "lasso")
    info = chart_points(page)  # positions after the rerun (uirevision keeps the view)
    pts = info["points"]
    left, top, w, h = info["plot"]
    y0, y1 = top + MODEBAR_PX, top + h - 2
    xs = sorted(p[1] for p in pts)
    x_left = (cut + min(x for x in xs if x > cut)) / 2  # off the box's edge: grabbing it would resize the box
    poly = [(left + w - 2, y0), (left + w - 2, y1), (x_left, y1), (x_left, y0)]
    expected_lasso = sorted(p[0] for p in pts if inside(poly, p[1], p[2]))
    assert expected_lasso and not set(expected_lasso) & set(expected_box)
    drag(page, [*poly, (poly[0][0] - 20, poly[0][1] + 5)], steps=8)
    wait_for_text(page, f"{len(expected_lasso)} image(s) from the map selection")
    choose_class(page, "dog")
    apply_label(page, len(expected_lasso))
    wait_for_text(page, f"Labelled {len(expected_lasso)} image(s) as")
    screenshot(page, "explore-lasso-selection")
    labels = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
    assert sorted(i for i, c in labels.items() if c == "dog") == expected_lasso
    assert sorted(i for i, c in labels.items() if c == "cat") == expected_box
    assert len(labels) == 14
