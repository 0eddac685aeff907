"""The Label page's keyboard in a real browser: the page takes the keys by itself (no click first, not
even right after typing class names into a box), and classes past the ninth have keys 0, Q, ..."""

from __future__ import annotations

import numpy as np
from PIL import Image
from streamlit_driver import (
    body_text,
    open_page,
    screenshot,
    shown_item,
    until_done,
    wait_for_text,
    wait_ready,
)

from sslapp.ingest.ingest import ingest
from sslapp.workspace import open_workspace

N_CLASSES = 11


def make_workspace(folder):
    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / f"img{i}.png")
    ws = open_workspace(folder / "ws", cache_size=16)
    assert ingest(ws, [images], workers=1, base=str(images))["added"] == 8
    return ws


def focused_tag(page) -> str:
    return page.evaluate("() => document.activeElement ? document.activeElement.tagName : ''")


def test_keys_work_without_a_click_and_past_nine_classes(app_factory, page, tmp_path):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    ws = make_workspace(tmp_path)
    app = app_factory(ws.root)
    open_page(page, app, "label")

    # the first classes, with the button: the panel closes once there are classes
    box = page.locator(".st-key-label_new_class_name textarea")
    box.click()
    box.fill("c1, c2")
    page.locator(".st-key-label_add_class button").click()
    wait_for_text(page, "2 · c2")
    wait_ready(page)
    # open it again and add the rest, one per line and comma-separated, with Ctrl+Enter: the panel stays
    # open and the emptied box keeps the cursor, until the page takes the keyboard back
    box.wait_for(state="hidden")
    page.get_by_text("Classes: create, rename, merge, delete").click()
    box.wait_for(state="visible")
    page.wait_for_timeout(500)  # the panel's opening animation
    box.click()
    box.fill("c3\nc4, c5, c6, c7, c8, c9\nc10, c11")
    box.press("Control+Enter")
    wait_for_text(page, "0 · c10")
    wait_ready(page)
    assert [c["name"] for c in ws.store.classes()] == [f"c{i}" for i in range(1, N_CLASSES + 1)]
    assert box.is_visible() and box.input_value() == ""
    page.wait_for_function("() => !['INPUT', 'TEXTAREA'].includes(document.activeElement?.tagName)", timeout=10_000)

    # no click anywhere: 0 labels the shown image with the tenth class
    first = shown_item(page)
    page.keyboard.press("0")
    wait_for_text(page, f"#{first} → c10")
    wait_ready(page)
    assert page.locator(".st-key-label_new_class_name textarea").input_value() == ""  # the key did not go there
    # and Q with the eleventh, U undoes it
    second = shown_item(page)
    assert second != first
    page.keyboard.press("q")
    wait_for_text(page, f"#{second} → c11")
    wait_ready(page)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {first: "c10", second: "c11"}
    screenshot(page, "label-keys")
    page.keyboard.press("u")
    wait_for_text(page, "Undid label of 1 image")
    wait_ready(page)
    assert shown_item(page) == second and {r["item_id"] for r in ws.store.labels()} == {first}

    # a fresh tab: keys work before any click, once the page is drawn (a key that lands while a loaded
    # page still draws its buttons is dropped: a fresh-clone run saw it once, and a person presses again)
    open_page(page, app, "label")
    wait_for_text(page, "Up next")  # drawn after the class buttons
    wait_ready(page)
    third = shown_item(page)
    assert focused_tag(page) not in ("INPUT", "TEXTAREA")
    until_done(lambda: page.keyboard.press("1"), lambda: ws.store.item(third)["label"] is not None,
               what=f"key 1 on #{third} in a fresh tab")
    wait_for_text(page, f"#{third} → c1")
    wait_ready(page)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()}[third] == "c1"
    assert page.locator('[data-testid="stException"]').count() == 0, body_text(page)[:3000]
    assert not errors, errors
