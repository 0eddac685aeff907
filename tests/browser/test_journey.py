"""The whole journey in a real browser on real photos (the 300 CIFAR-10 sample images), the way a
user walks it, checking each point of issues 12 and 22 on the way.

Data (load the sample data; the first map is queued by itself) -> Pretrain (a short run; the page is
reloaded while the run is queued, and still says how the run ended, what it kept and which embedding
the app uses, word for word as the store has it) -> Explore (a map that fills the page; click a point
to preview it; box-select a group, leave everything out, keep the images of one kind, label them) ->
Label (create ten classes at once, ask for suggestions, label with the keys; the queue refills
itself; "More like this" and a bulk label from its grid) -> Train (an honest estimate, the review
gallery, one correction) -> Check my labels (issue 22: an unbalanced labelling, 24 ships and about 4
of every other class, with a cat and a bird bulk-labelled ship by mistake; "Check my labels" puts both
in the 8 cards it shows, each card offers Keep first and no button is primary; More like this on a
rightly labelled point of the map opens on that label) -> Export (the default export, under 100 MB,
downloaded) -> `sslapp predict` on it.
The true class of each image is its sample-data folder, which the test reads and the app never shows.
The `page` fixture fails the test on any request that leaves 127.0.0.1. Each page is screenshotted
into test-artifacts/; SSLAPP_UPDATE_SCREENSHOTS=1 also refreshes docs/screenshots/ for the README.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile

import pytest
from map_driver import (
    MAP,
    chart_points,
    choose_option,
    click_point,
    drag,
    isolated_point,
    pick_tool,
    toggle_thumb,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from streamlit_driver import (
    ROOT,
    body_text,
    nav,
    open_page,
    publish_screenshots,
    screenshot,
    select_option,
    shown_item,
    until_done,
    wait_for_text,
    wait_ready,
)
from trust_walk import CLASSES, check_my_labels_walk, grid_ids, no_exception, plain, truth

from sslapp.store.states import ACTIVE_JOB_STATES
from sslapp.ui.label_classes import CLASS_KEYS
from sslapp.ui.pretrain_outcome import ending, kept_line, verdict
from sslapp.words import count
from sslapp.workspace import open_workspace

sys.path.insert(0, str(ROOT / "tests"))
from test_faults import wait_for  # noqa: E402

SAMPLE = ROOT / "sample_data"
N_IMAGES = 300
EPOCHS = 1
WIDTH, HEIGHT = 1440, 900
SLOW_S = 300  # the longest wait for a worker job (the first maps, pretraining) on a busy 2-core machine


def fill_number(page, key, value):
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Tab")
    wait_ready(page)  # the rerun that commits the value ends before the next click (a full run lost a typed class)


def keep_only(page, ws, key, ids, kind, most=6) -> list[int]:
    """Leave every image out, then take back (at most `most`) of those of `kind`: what a user does
    with a mixed selection. Returns the kept ids."""
    page.locator(f".st-key-{key}-none button").first.click()
    wait_ready(page)
    keep = [i for i in ids if truth(ws, i) == kind][:most]
    for item_id in keep:
        toggle_thumb(page, item_id, key=key)
    return keep


def label_shown_with_its_key(page, ws) -> tuple[int, str]:
    item = shown_item(page)
    kind = truth(ws, item)
    names = [c["name"] for c in ws.store.classes()]
    page.keyboard.press(CLASS_KEYS[names.index(kind)])
    wait_for(lambda: ws.store.item(item)["label"] == kind, timeout=30, what=f"#{item} labelled {kind}")
    wait_for(lambda: shown_item(page, required=False) not in (None, item), timeout=30, what="the next image")
    wait_ready(page)
    return item, kind


@pytest.mark.slow
@pytest.mark.timeout(3 * SLOW_S)  # the whole product, pretraining included, beside the other xdist worker
def test_the_whole_journey_on_real_photos(app_factory, page, tmp_path):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    ws = open_workspace(tmp_path / "ws", cache_size=32)  # the sample photos are 32 px
    # screenshots for the README want the sidebar as a user sees it (a server of its own); any other
    # run takes this worker's shared server, which opens the workspace by its ?ws= link
    app = app_factory(ws.root, fresh=os.environ.get("SSLAPP_UPDATE_SCREENSHOTS") == "1")

    # -- Data: the sample photos; the first map is queued as soon as they are in ----------------------
    open_page(page, app, "data")
    page.locator(".st-key-load_sample button").click()
    wait_for_text(page, "finished", timeout=SLOW_S)
    wait_ready(page)
    assert ws.store.count_items() == N_IMAGES and not ws.store.labels()  # no labels given away
    assert ws.store.jobs(kind="embed"), "the first map was not queued after the images arrived"
    wait_for_text(page, f"Images ({N_IMAGES})")
    no_exception(page)
    screenshot(page, "data")

    # -- Pretrain: a short run; every encoder is kept with its score, one is in use -------------------
    nav(page, "Pretrain")
    select_option(page, "pt_backbone", "resnet18-w16")  # the quarter-width ResNet: the same path, 5x less CPU
    select_option(page, "pt_device", "cpu")
    page.locator(".st-key-pt_length").get_by_text("epochs", exact=True).click()
    fill_number(page, "pt_amount", EPOCHS)
    page.get_by_text("Advanced", exact=True).click()
    fill_number(page, "pt_batch", 64)
    fill_number(page, "pt_size", 32)
    page.locator('[data-testid="stMain"] [data-testid="stFormSubmitButton"] button').click()
    wait_for(lambda: ws.store.jobs(kind="pretrain"), timeout=30, what="the pretrain job after Start")
    # a reload while the run is queued behind the first map or running (issue 22: the page used to end
    # with no message then): the outcome and the verdict still come
    assert ws.store.jobs(kind="pretrain", limit=1)[0]["status"] in ACTIVE_JOB_STATES
    page.reload()
    wait_for_text(page, f"Done: {EPOCHS} epoch", timeout=2 * SLOW_S)
    wait_ready(page)
    job = ws.store.jobs(kind="pretrain", limit=1)[0]
    assert job["status"] == "done" and job["result"]["epochs"] == EPOCHS
    page.get_by_text("Encoders", exact=True).wait_for()
    text = body_text(page)
    assert "Embedding:" in text and "Job " not in text
    # the reloaded page says how the run ended, what it kept and which embedding the app uses now, word
    # for word as the store has them (the page reads the store, never the lost session)
    run = ws.store.run_for_job(job["id"])
    ended, kept_enc, said = plain(ending(ws, job, run)), plain(kept_line(ws, run, EPOCHS)), plain(verdict(ws, run))
    assert re.fullmatch(rf"Done: {EPOCHS} epoch at \d+ images/s(, in .+)?\.", ended), ended
    assert kept_enc.startswith("Kept the encoder after epoch "), kept_enc  # one epoch finished: an encoder is kept
    assert said.startswith(("The app now uses this encoder (", "The app keeps using ")), said  # plainly, either way
    assert ended in plain(page.locator(".st-key-pretrain_card").inner_text())
    on_page = plain(page.locator(".st-key-pretrain_verdict").inner_text())
    assert kept_enc in on_page and said in on_page, (on_page, kept_enc, said)
    no_exception(page)
    screenshot(page, "pretrain")

    # -- Explore: the map is the page; click to preview; correct a selection before labelling it ------
    nav(page, "Explore")
    info = chart_points(page)  # the map the ingest queued (or the one after pretraining)
    wait_ready(page)
    box = page.locator(MAP).bounding_box()
    assert box["width"] >= 0.6 * WIDTH and box["height"] >= 500, box
    points = info["points"]
    assert len(points) == N_IMAGES
    item, x, y = isolated_point(points)
    hover = click_point(page, x, y)
    assert "sample_data" not in hover and f"{truth(ws, item)}/" not in hover  # the folder would give it away
    preview = page.locator(".st-key-explore_preview")
    preview.get_by_text(f"#{item}").wait_for()
    assert preview.locator("img").count() == 1
    # a box around the 15 points nearest the map's middle: a mixed group, as real selections are
    cx = sorted(p[1] for p in points)[len(points) // 2]
    cy = sorted(p[2] for p in points)[len(points) // 2]
    near = sorted(points, key=lambda p: (p[1] - cx) ** 2 + (p[2] - cy) ** 2)[:15]
    x0, x1 = min(p[1] for p in near) - 2, max(p[1] for p in near) + 2
    y0, y1 = min(p[2] for p in near) - 2, max(p[2] for p in near) + 2
    pick_tool(page, "select")
    drag(page, [(x0, y0), (x1, y1)])
    page.get_by_text(re.compile(r"\d+ images? from the map selection")).first.wait_for()
    wait_ready(page)
    selected = grid_ids(page, "explore_grid")
    assert len(selected) >= 10
    kinds = [truth(ws, i) for i in selected]
    majority = max(set(kinds), key=kinds.count)
    kept = keep_only(page, ws, "explore_grid", selected, majority)
    wait_for_text(page, f"{len(selected) - len(kept)} left out → labelling {len(kept)}")
    page.locator(".st-key-explore_class input").click()  # no class yet: type to pick "+ New class…"
    page.keyboard.type("New class")
    page.keyboard.press("Enter")
    wait_ready(page)
    fill_number(page, "explore_new_class", majority)
    page.locator(".st-key-explore_apply_label button").click()
    wait_for_text(page, f"Labelled {count(len(kept), 'image')} as")
    wait_ready(page)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == {i: majority for i in kept}
    no_exception(page)
    screenshot(page, "explore")

    # -- Label: ten classes at once, suggestions, keys; the queue refills itself ----------------------
    nav(page, "Label")
    page.get_by_text("Classes: create, rename, merge, delete").click()
    names_box = page.locator(".st-key-label_new_class_name textarea")

    def add_the_classes() -> None:
        names_box.wait_for(state="visible")
        wait_ready(page)
        names_box.fill(", ".join(CLASSES))
        page.locator(".st-key-label_add_class button").click()
        wait_ready(page)

    until_done(add_the_classes, lambda: len(ws.store.classes()) == 10, what="ten classes")
    fill_number(page, "label_suggest_budget", 8)
    page.locator(".st-key-label_suggest button").click()
    wait_for(lambda: len(ws.store.open_suggestions()) == 8, timeout=SLOW_S, what="8 suggestions")
    suggested = [s["item_id"] for s in ws.store.open_suggestions()]
    wait_for(lambda: shown_item(page, required=False) == suggested[0], timeout=30,
             what="the first suggestion on the page")
    wait_ready(page)
    keyed = {}
    for _ in range(9):  # one past the 8 suggestions: the page asked for the next batch when 4 were left
        item, kind = label_shown_with_its_key(page, ws)
        keyed[item] = kind
    assert list(keyed)[:4] == suggested[:4]  # served in the order "Up next" showed
    assert set(keyed) - set(suggested), "the 9th image did not come from the refill"
    jobs = ws.store.jobs(kind="suggest")
    assert len(jobs) >= 2 and any((j["params"] or {}).get("auto") for j in jobs), jobs
    assert "No active-learning suggestions yet" not in body_text(page)
    no_exception(page)
    screenshot(page, "label")

    # -- More like this from the shown image, then one bulk label of the alike ones --------------------
    # the refill asked for while keying lands first: it may change the image shown, and a click that
    # meets the redraw is lost (a person would click again: so does the test, on the image shown then)
    wait_for(lambda: not ws.store.jobs(kind="suggest", statuses=ACTIVE_JOB_STATES), timeout=SLOW_S,
             what="the suggestion refill")
    wait_ready(page)
    dialog = page.get_by_role("dialog")
    clicked: list[int] = []

    def open_more_like_this() -> None:
        wait_ready(page)
        clicked.append(shown_item(page))
        try:  # a click that meets a redraw is retried by until_done, on the image shown then
            page.locator(f".st-key-label_{clicked[-1]}_similar button").first.click(timeout=10_000)
        except PlaywrightTimeoutError:
            pass

    until_done(open_more_like_this, lambda: dialog.get_by_text("Images most like").count() > 0,
               what="the More like this dialog")
    item = clicked[-1]
    kind = truth(ws, item)
    wait_ready(page)
    neighbours = grid_ids(dialog, "similar_grid")
    assert len(neighbours) == 20 and item not in neighbours
    similar_kept = keep_only(page, ws, "similar_grid", neighbours, kind)
    apply = dialog.locator(".st-key-similar_apply button")
    # the image has no label and there is no classifier yet: no class is picked for the user
    assert apply.is_disabled() and dialog.locator(".st-key-similar_class input").input_value() == ""
    choose_option(page, "similar_class", kind)
    page.wait_for_function("() => !document.querySelector('.st-key-similar_apply button').disabled")
    assert apply.inner_text().strip() == f"Label {count(len(similar_kept) + 1, 'image')}"  # the kept ones and the image
    screenshot(page, "similar")
    apply.click()
    dialog.wait_for(state="detached")
    wait_ready(page)
    labels = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
    for i in [*similar_kept, item]:
        assert labels[i] == kind
    for i in set(neighbours) - set(similar_kept) - set(keyed) - set(kept):
        assert i not in labels  # what was left out stays unlabelled

    # -- Train: an honest estimate, then the review gallery and one correction ------------------------
    nav(page, "Train")
    page.locator(".st-key-train button").click()
    wait_for(lambda: ws.store.latest_artifact("classifier"), timeout=SLOW_S, what="the classifier")
    wait_for_text(page, "Estimated accuracy", timeout=SLOW_S)
    wait_ready(page)
    assert "95% interval" in body_text(page)
    page.get_by_text("Where the classifier disagrees or is unsure").wait_for()
    fix = page.locator('[class*="st-key-uns_fix_"]').first  # "Label as <predicted>" on the least sure image
    fixed = int(re.search(r"st-key-uns_fix_(\d+)", fix.get_attribute("class")).group(1))
    fix.locator("button").first.click()
    wait_ready(page)
    wait_for(lambda: ws.store.item(fixed)["label"] is not None, timeout=30, what="the corrected label")
    no_exception(page)
    screenshot(page, "train")

    # -- Check my labels after an unbalanced labelling with two planted mistakes (issue 22) ------------
    given = check_my_labels_walk(page, ws, dialog, WIDTH, HEIGHT, SLOW_S)

    # -- Export: the default export is small; download it ---------------------------------------------
    nav(page, "Export")
    page.locator('[data-testid="stMain"] [data-testid="stFormSubmitButton"] button').click()
    page.locator(".st-key-dl_zip button").wait_for(timeout=SLOW_S * 1000)
    wait_ready(page)
    no_exception(page)
    screenshot(page, "export")
    with page.expect_download() as download:
        page.locator(".st-key-dl_zip button").click()
    saved = tmp_path / "download" / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".zip" and zipfile.is_zipfile(saved)
    assert saved.stat().st_size < 100e6

    # -- sslapp predict on the downloaded export -------------------------------------------------------
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(saved) as z:
        z.extractall(unpacked)
    export_dir = next(p.parent for p in unpacked.rglob("model.json"))
    out = subprocess.run([sys.executable, "-m", "sslapp", "predict", str(export_dir), str(SAMPLE / "ship"), "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=SLOW_S)
    assert out.returncode == 0, out.stderr
    predictions = json.loads(out.stdout)
    assert len(predictions) == len(list((SAMPLE / "ship").glob("*.png")))
    assert {p["class"] for p in predictions} <= set(CLASSES)

    # nothing the user did was lost on the way
    final = {r["item_id"]: r["class_name"] for r in ws.store.labels(sources=("user",))}
    assert set(keyed) | set(kept) | set(similar_kept) | {item, fixed} <= set(final)
    assert {i: final.get(i) for i in given} == given  # the bulk labels, the two mistakes too: the user's own
    assert not errors, errors
    publish_screenshots(["data", "pretrain", "explore", "label", "train", "export"])
