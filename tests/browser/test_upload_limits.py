"""The upload size limit is enforced in the browser, with Streamlit's message, and nothing is stored.

The limit comes from `server.maxUploadSize` (1024 MB in .streamlit/config.toml); this test runs
the app with 1 MB so a 2 MB file shows the refusal without writing a gigabyte.
"""

from __future__ import annotations

import os

from streamlit_driver import body_text, open_page, screenshot


def test_a_file_over_the_upload_limit_is_refused_with_a_message(app_factory, page, tmp_path):
    big = tmp_path / "huge.png"
    big.write_bytes(os.urandom(2 * 1024 * 1024))
    app = app_factory(args=["--server.maxUploadSize", "1"])
    open_page(page, app, "data")
    page.locator(".st-key-files_0 input[type=file]").set_input_files(str(big))
    page.get_by_text("1.0MB or smaller", exact=False).first.wait_for()
    screenshot(page, "upload-too-large")
    assert page.locator(".st-key-add_files button").count() == 0  # nothing to add
    assert not list((app.workspace / "tmp").glob("upload-*")), "a refused file was written"
    assert "Images" in body_text(page)
