"""The whole journey in a real browser, the way a user walks it, on 40 tiny images.

Data (upload a zip) -> Pretrain (start, watch progress) -> Explore (compute the map, box-select,
label) -> Label (ask for suggestions, label them with the keys 1-9) -> Train -> Export (download the zip) ->
`sslapp predict` on the downloaded export. Each page is screenshotted into test-artifacts/;
SSLAPP_UPDATE_SCREENSHOTS=1 also refreshes docs/screenshots/ for the README.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from map_driver import MODEBAR_PX, apply_label, chart_points, choose_class, drag, pick_tool
from PIL import Image
from streamlit_driver import (
    ROOT,
    body_text,
    label_with_key,
    nav,
    open_page,
    publish_screenshots,
    screenshot,
    wait_for_text,
    wait_ready,
)

from sslapp.workspace import open_workspace

sys.path.insert(0, str(ROOT / "tests"))
from test_faults import wait_for  # noqa: E402

N_IMAGES = 40
EPOCHS = 3
SLOW_S = 240  # the longest wait for a worker job (pretraining, the first UMAP) on a busy 2-core machine


def make_zip(folder, n=N_IMAGES):
    """Two visually distinct groups (warm and cool colours) of small noisy images, zipped."""
    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(11)
    for i in range(n):
        base = np.array((210, 60, 40) if i % 2 else (40, 70, 210), np.int16)
        a = np.clip(base + rng.integers(-40, 41, (24, 24, 3)), 0, 255).astype(np.uint8)
        a[rng.integers(0, 16):, rng.integers(0, 16):] //= 2
        Image.fromarray(a).save(images / f"img{i:02d}.png")
    archive = folder / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(images.iterdir()):
            z.write(p, f"photos/{p.name}")
    return archive, images


def no_exception(page):
    assert page.locator('[data-testid="stException"]').count() == 0, body_text(page)[:3000]


def select_option(page, key, option):
    page.locator(f".st-key-{key}").click()
    page.get_by_role("option", name=option, exact=True).click()


def fill_number(page, key, value):
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Tab")
    wait_ready(page)  # the rerun that commits the value ends before the next click (a full run lost a typed class)


@pytest.mark.slow
def test_the_whole_journey_in_a_browser(app_factory, page, tmp_path):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    archive, images = make_zip(tmp_path)
    ws = open_workspace(tmp_path / "ws", cache_size=16)  # a fresh, empty workspace with a tiny cache
    app = app_factory(ws.root)

    # -- Data: upload a zip --------------------------------------------------------------------
    open_page(page, app, "data")
    page.locator(".st-key-files_0 input[type=file]").set_input_files(str(archive))
    page.locator(".st-key-add_files button").wait_for()
    page.locator(".st-key-add_files button").click()
    wait_for_text(page, "finished", timeout=SLOW_S)
    wait_ready(page)
    assert ws.store.count_items() == N_IMAGES
    wait_for_text(page, f"Images ({N_IMAGES})")
    no_exception(page)
    screenshot(page, "data")

    # -- Pretrain: a short run, and its progress appears ---------------------------------------
    nav(page, "Pretrain")
    select_option(page, "pt_backbone", "resnet18-std")
    select_option(page, "pt_device", "cpu")
    page.locator(".st-key-pt_length").get_by_text("epochs", exact=True).click()
    fill_number(page, "pt_amount", EPOCHS)
    page.get_by_text("Advanced", exact=True).click()
    fill_number(page, "pt_batch", 16)
    fill_number(page, "pt_size", 16)
    page.locator('[data-testid="stFormSubmitButton"] button').click()
    # the live panel: the job, then its progress bar (on a fast machine the run may end first)
    wait_for_text(page, "simclr · resnet18-std", timeout=SLOW_S)
    page.get_by_text(re.compile(rf"epoch \d+ of {EPOCHS}")).first.wait_for(timeout=SLOW_S * 1000)
    screenshot(page, "pretrain-running")
    wait_for_text(page, f"Done: {EPOCHS} epochs", timeout=SLOW_S)
    wait_ready(page)
    job = ws.store.jobs(kind="pretrain", limit=1)[0]
    assert job["status"] == "done" and job["params"]["backbone"] == "resnet18-std"
    assert job["params"]["epochs"] == EPOCHS and job["result"]["epochs"] == EPOCHS
    assert ws.store.latest_artifact("encoder") is not None
    no_exception(page)
    screenshot(page, "pretrain")

    # -- Explore: compute the map, box-select a group, label it ---------------------------------
    nav(page, "Explore")
    page.locator(".st-key-explore_embed button").click()
    page.locator(".st-key-explore_map .js-plotly-plot").wait_for(timeout=SLOW_S * 1000)
    wait_ready(page)
    pick_tool(page, "select")
    info = chart_points(page)
    pts = info["points"]
    assert len(pts) == N_IMAGES
    left, top, w, h = info["plot"]
    xs = sorted(p[1] for p in pts)
    cut = (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
    y0, y1 = top + MODEBAR_PX, top + h - 2
    chosen = sorted(p[0] for p in pts if p[1] < cut and y0 < p[2] < y1)
    assert len(chosen) >= 5
    drag(page, [(left + 2, y0), (cut, y1)])
    wait_for_text(page, f"{len(chosen)} image(s) from the map selection")
    choose_class(page, "+ New class…")
    fill_number(page, "explore_new_class", "warm")
    apply_label(page, len(chosen))
    wait_for_text(page, f"Labelled {len(chosen)} image(s) as")
    labels = {r["item_id"]: (r["class_name"], r["source"]) for r in ws.store.labels()}
    assert sorted(labels) == chosen and set(labels.values()) == {("warm", "user")}
    no_exception(page)
    screenshot(page, "explore")

    # -- Label page: ask for suggestions, then label them with the keyboard -----------------------
    nav(page, "Label")
    wait_for_text(page, "No active-learning suggestions yet")
    fill_number(page, "label_suggest_budget", 8)
    page.locator(".st-key-label_suggest button").click()
    wait_for(lambda: ws.store.open_suggestions(), timeout=SLOW_S, what="suggestions")
    page.get_by_text("No active-learning suggestions yet").wait_for(state="detached", timeout=SLOW_S * 1000)
    wait_ready(page)
    suggested = [s["item_id"] for s in ws.store.open_suggestions()]
    assert len(suggested) == 8 and not set(suggested) & set(chosen)
    page.get_by_text("Classes: create, rename, merge, delete").click()
    fill_number(page, "label_new_class_name", "cool")
    page.locator(".st-key-label_add_class button").click()
    wait_ready(page)
    wait_for_text(page, "2 · cool")
    assert "No active-learning suggestions yet" not in body_text(page)
    keyed = {}
    for key in "2212":
        item = label_with_key(page, key)
        assert item in suggested  # the queue is the suggestions, in their order
        keyed[item] = {"1": "warm", "2": "cool"}[key]
    page.keyboard.press("u")  # undo the last one: it comes back as the current image; label it again
    wait_for_text(page, "Undid label of 1 image(s)")
    wait_ready(page)
    last = list(keyed)[-1]
    assert last not in {r["item_id"] for r in ws.store.labels()}
    assert label_with_key(page, "2") == last
    keyed[last] = "cool"
    labels = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
    for item, name in keyed.items():
        assert labels[item] == name
    assert len(labels) == len(chosen) + len(keyed)
    no_exception(page)
    screenshot(page, "label")

    # -- Train ------------------------------------------------------------------------------------
    nav(page, "Train")
    page.locator(".st-key-train button").click()
    wait_for_text(page, "Classifier from run", timeout=SLOW_S)
    wait_ready(page)
    assert ws.store.latest_artifact("classifier") is not None
    no_exception(page)
    screenshot(page, "train")

    # -- Export and download the zip --------------------------------------------------------------
    nav(page, "Export")
    page.locator('[data-testid="stFormSubmitButton"] button').click()
    page.locator(".st-key-dl_zip button").wait_for(timeout=SLOW_S * 1000)
    wait_ready(page)
    no_exception(page)
    screenshot(page, "export")
    with page.expect_download() as download:
        page.locator(".st-key-dl_zip button").click()
    saved = tmp_path / "download" / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".zip" and zipfile.is_zipfile(saved)

    # -- sslapp predict on the downloaded export --------------------------------------------------
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(saved) as z:
        z.extractall(unpacked)
    export_dir = next(p.parent for p in unpacked.rglob("model.json"))
    out = subprocess.run([sys.executable, "-m", "sslapp", "predict", str(export_dir), str(images), "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=SLOW_S)
    assert out.returncode == 0, out.stderr
    predictions = json.loads(out.stdout)
    assert len(predictions) == N_IMAGES
    assert {p["class"] for p in predictions} <= {"warm", "cool"}
    assert all(0.0 <= p["confidence"] <= 1.0 for p in predictions)

    # nothing the user did was lost on the way
    final = {r["item_id"]: r["class_name"] for r in ws.store.labels(sources=("user",))}
    assert len(final) == len(chosen) + len(keyed)
    assert not errors, errors
    publish_screenshots(["data", "pretrain", "explore", "label", "train", "export"])
