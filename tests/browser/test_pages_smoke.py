"""Every page of the real app opens in chromium without an exception, and is screenshotted."""

from __future__ import annotations

from streamlit_driver import body_text, nav, open_page, screenshot

PAGES = ["Data", "Pretrain", "Explore", "Label", "Train", "Export"]


def test_every_page_renders_without_an_exception(app, page):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert app.url.startswith("http://127.0.0.1:")
    open_page(page, app, "data")
    for title in PAGES:
        nav(page, title)
        assert page.locator('[data-testid="stException"]').count() == 0, body_text(page)
        assert title in page.locator("h1").first.inner_text()
        screenshot(page, f"empty-{title.lower()}")
    open_page(page, app, "explore")  # a deep link works too
    assert "Explore" in page.locator("h1").first.inner_text()
    assert not errors, errors
