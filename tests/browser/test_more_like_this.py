"""More like this in a real browser: from the image on the Label page, open its nearest neighbours,
leave the two that are not alike out, and label the rest (and the image itself) with one click."""

from __future__ import annotations

import re

import numpy as np
from map_driver import choose_option, toggle_thumb
from PIL import Image
from streamlit_driver import open_page, screenshot, shown_item, wait_for_text, wait_ready

from sslapp.cli.common import run_job_in_foreground
from sslapp.ingest.ingest import ingest
from sslapp.workspace import open_workspace

GRID = "similar_grid"


def make_workspace(folder):
    """12 reddish and 2 bluish images, the features of the pixel start cached by a real map job."""
    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(14):
        base = np.array((220, 40, 30) if i < 12 else (30, 40, 220), np.int16)
        a = np.clip(base + rng.integers(-30, 31, (20, 20, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(images / f"img{i:02d}.png")
    ws = open_workspace(folder / "ws", cache_size=16)
    assert ingest(ws, [images], workers=1, base=str(images))["added"] == 14
    ws.store.set_setting("features.starts", ["pixels"])
    job = run_job_in_foreground(ws, "embed", {"provisional": False, "clusters": "kmeans"})
    assert job["status"] == "done", job["error"]
    ws.store.class_id("red", create=True)
    return ws


def test_more_like_this_then_a_bulk_label_of_the_kept_ones(app_factory, page, tmp_path):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    ws = make_workspace(tmp_path)
    app = app_factory(ws.root)
    open_page(page, app, "label")
    wait_for_text(page, "Why this one")
    first = shown_item(page)

    page.locator(f".st-key-label_{first}_similar button").first.click()  # click 1 (a tooltip adds a hidden twin)
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Images most like").wait_for()
    wait_ready(page)
    cells = dialog.locator(f'[class*="st-key-{GRID}-t-"]')
    cells.first.wait_for()
    shown = sorted({int(re.search(rf"{GRID}-t-(\d+)", c).group(1))
                    for c in (cells.nth(i).get_attribute("class") for i in range(cells.count()))})
    assert len(shown) == 13 and first not in shown  # every other image, the image itself left out
    blue = {r["id"] for r in ws.store.items() if int(r["source"][3:5]) >= 12}
    red_shown = [i for i in shown if i not in blue]
    left_out = sorted(blue - {first}) if first not in blue else red_shown[:2]
    for item_id in left_out:  # the two that are not alike
        toggle_thumb(page, item_id, key=GRID)
    dialog.get_by_text(f"{len(left_out)} left out").first.wait_for()
    apply = dialog.locator(".st-key-similar_apply button")
    # the image has no label and there is no classifier yet: no class is picked for the user
    assert apply.is_disabled() and dialog.locator(".st-key-similar_class input").input_value() == ""
    choose_option(page, "similar_class", "red")
    kept = len(shown) - len(left_out) + 1  # and the image itself
    page.wait_for_function("() => !document.querySelector('.st-key-similar_apply button').disabled")
    assert apply.inner_text().strip() == f"Label {kept} image(s)"
    screenshot(page, "similar")
    apply.click()  # click 2
    page.get_by_role("dialog").wait_for(state="detached")
    wait_ready(page)
    labelled = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
    assert sorted(labelled) == sorted(set(shown) - set(left_out) | {first})
    assert set(labelled.values()) == {"red"}
    assert not errors, errors
