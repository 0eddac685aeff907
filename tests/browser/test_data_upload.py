"""The Data page in a real browser: upload a zip of class folders (with a bad file inside), let the
worker ingest it, and see the counts, the per-file reason and the thumbnail grid."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image
from streamlit_driver import body_text, click_button, open_page, screenshot, wait_for_text


def _zip_bytes(n: int = 12) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            img = Image.fromarray(np.random.default_rng(i).integers(0, 256, (24, 24, 3), dtype=np.uint8))
            png = io.BytesIO()
            img.save(png, "PNG")
            zf.writestr(f"shapes/{'cat' if i % 2 else 'dog'}/{i}.png", png.getvalue())
        zf.writestr("shapes/notes.png", b"not an image")
        zf.writestr("../escape.png", b"whatever")
    return buf.getvalue()


def test_upload_a_zip_with_folder_labels(app, page):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    open_page(page, app, "data")
    assert "This workspace is empty" in body_text(page)
    page.get_by_role("button", name="Load sample data").wait_for()  # offered while the workspace is empty
    page.get_by_text("Use folder names as labels").first.click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(
        files=[{"name": "shapes.zip", "mimeType": "application/zip", "buffer": _zip_bytes()}])
    page.get_by_role("button", name="Add 1 file").wait_for()
    click_button(page, "Add 1 file")
    wait_for_text(page, "Adding images finished", timeout=90)
    wait_for_text(page, "added 12", timeout=90)
    text = body_text(page)
    assert "2 skipped" in text and "Skipped files (2) and why" in text, text
    from sslapp.store import Store  # the table of reasons is drawn on a canvas: read what it shows

    reasons = sorted(e["reason"].split(":")[0] for e in Store(app.workspace / "sslapp.db").last_ingest_report()["skipped"])
    assert reasons == ["not-image", "unsafe-path"]
    assert page.locator('[data-testid="stMetricValue"]').first.inner_text() == "12"
    page.locator('[data-testid="stImage"]').nth(11).wait_for()  # the grid, drawn by the rerun after the job
    assert page.locator('[data-testid="stImage"]').count() == 12
    screenshot(page, "data-after-upload")
    assert page.locator('[data-testid="stException"]').count() == 0, body_text(page)
    assert not errors, errors
    ws_tmp = app.workspace / "tmp"
    assert not any(ws_tmp.iterdir())  # the upload was removed after the ingest
