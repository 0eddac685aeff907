"""In chromium: label files in and out on the Data page (with the sidebar's name kept per label), and a
workspace that cannot be opened shown as a plain message with a way out, never Streamlit's traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from streamlit_driver import body_text, click_button, open_page, screenshot, wait_for_text, wait_ready

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from embed_helpers import make_workspace  # noqa: E402


def _labels(ws) -> list[tuple[str, str, str | None]]:
    return sorted((r["item_source"], r["class_name"], r["annotator"]) for r in ws.store.labels())


def _upload(page, name: str, content: str) -> None:
    """Open the Data page's label files (if closed) and import one file through its uploader.

    Waits for the page to stand still first and again once the file is in: the rerun after an import
    draws a new, empty uploader, and a file given to the one it replaces (or a click on that one's
    button) is lost, which a full run saw once."""
    wait_ready(page)
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Import labels from a file")
    if not uploader.count() or not uploader.first.is_visible():
        page.get_by_text("Labels in and out").first.click()
    uploader.first.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": name, "mimeType": "application/json", "buffer": content.encode()}])
    page.get_by_role("button", name="Import these labels").wait_for()
    wait_ready(page)
    click_button(page, "Import these labels")


def test_label_files_in_and_out_keep_who_labelled(tmp_path, app_factory, page):
    ws, _ = make_workspace(tmp_path / "disk", per_class=2)
    link = tmp_path / "ws-link"  # the workspace is a symlink to another disk, as users keep big data
    link.symlink_to(ws.root, target_is_directory=True)
    app = app_factory(link)
    open_page(page, app, "data")
    name = page.get_by_role("textbox", name="Your name")
    name.fill("dana")
    name.press("Enter")
    wait_ready(page)
    tasks = [{"id": 1, "data": {"image": "/data/local-files/?d=images/red/red-000.png"},
              "annotations": [{"result": [{"type": "choices", "value": {"choices": ["red"]}}]}]},
             {"id": 2, "data": {"image": "/data/upload/3/8f7e2a1c-blue-001.png"},
              "annotations": [{"result": [{"type": "choices", "value": {"choices": ["blue"]}}],
                               "completed_by": {"email": "eve@example.org"}}]}]
    _upload(page, "project-3.json", json.dumps(tasks))
    wait_for_text(page, "Labelled 2 images in 2 classes from project-3.json")
    assert _labels(ws) == [("blue/blue-001.png", "blue", "eve@example.org"), ("red/red-000.png", "red", "dana")]

    coco = {"images": [{"id": 1, "file_name": "green/green-000.png"}], "categories": [{"id": 1, "name": "green"}],
            "annotations": [{"id": 5, "image_id": 1, "category_id": 1}, {"id": 6, "image_id": 9, "category_id": 1}]}
    _upload(page, "bad.coco.json", json.dumps(coco))
    wait_for_text(page, "1 problem, so nothing was imported")
    assert "annotation 2 (id 6): image_id 9 is not in images" in body_text(page)  # shown as a list, code in code
    assert len(_labels(ws)) == 2 and ws.store.class_id("green") is None  # all or nothing
    screenshot(page, "data-label-files")

    with page.expect_download() as download:
        page.locator('[data-testid="stDownloadButton"]').filter(has_text="Label Studio").first.click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert sorted((t["data"]["image"], t["annotations"][0]["sslapp_annotator"]) for t in exported) == [
        ("blue/blue-001.png", "eve@example.org"), ("red/red-000.png", "dana")]
    assert page.locator('[data-testid="stException"]').count() == 0, body_text(page)


def test_a_workspace_on_a_missing_disk_is_a_plain_message_with_a_way_out(tmp_path, app_factory, page):
    home = tmp_path / "home"
    home.mkdir()
    (home / "default").symlink_to(tmp_path / "unplugged" / "ws", target_is_directory=True)
    app = app_factory(tmp_path / "unused", SSLAPP_WORKSPACE="", SSLAPP_HOME=str(home))
    open_page(page, app, "data")
    wait_for_text(page, "The workspace could not be opened")
    text = body_text(page)
    assert "which is not there" in text and "Traceback" not in text
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("Ask Google").count() == 0 and page.get_by_text("Ask ChatGPT").count() == 0
    screenshot(page, "error-way-out")
    page.get_by_label("New workspace").last.fill("fresh")
    click_button(page, "Create and open")
    wait_for_text(page, "This workspace is empty")
    assert (home / "fresh" / "sslapp.db").exists() and not (tmp_path / "unplugged").exists()
