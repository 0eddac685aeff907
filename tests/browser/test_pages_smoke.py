"""Every page of the real app opens in chromium without an exception, and is screenshotted."""

from __future__ import annotations

from streamlit_driver import body_text, leaves_machine, nav, open_page, screenshot

PAGES = ["Data", "Pretrain", "Explore", "Label", "Train", "Export"]


def test_every_page_renders_without_an_exception_or_a_request_to_another_host(app, page):
    """Open every page (icons, favicon and fonts included) and wait for the network to settle: no
    exception, the page's title, and (the `page` fixture checks it) no request outside 127.0.0.1."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert app.url.startswith("http://127.0.0.1:")
    open_page(page, app, "data")
    for title in PAGES:
        nav(page, title)
        page.wait_for_load_state("networkidle")
        assert page.locator('[data-testid="stException"]').count() == 0, body_text(page)
        assert title in page.locator("h1").first.inner_text()
        screenshot(page, f"empty-{title.lower()}")
    favicon = page.evaluate("() => document.querySelector(\"link[rel='shortcut icon']\")?.href || ''")
    assert favicon and not leaves_machine(favicon), favicon
    open_page(page, app, "explore")  # a deep link works too
    assert "Explore" in page.locator("h1").first.inner_text()
    assert page.outside_requests == [], page.outside_requests
    assert not errors, errors


def test_the_offline_check_flags_outside_hosts_only():
    """The request check every browser test runs (conftest `page`) tells local from outside."""
    assert leaves_machine("https://fonts.gstatic.com/s/i/short-term/release/materialsymbolsrounded/label/default/24px.svg")
    assert leaves_machine("https://fonts.googleapis.com/css2?family=Source+Sans")
    assert leaves_machine("http://127.0.0.2:8501/")  # another address is another host
    assert not leaves_machine("http://127.0.0.1:8501/static/js/index.js")
    assert not leaves_machine("http://localhost:8501/_stcore/health")
    assert not leaves_machine("data:image/svg+xml,<svg/>")
    assert not leaves_machine("blob:http://127.0.0.1:8501/4f3c")
