"""Browser fixtures: the real app on a free local port and Debian's headless chromium.

The browser tests skip (with the reason) when /usr/bin/chromium is missing; `bash scripts/test.sh`
installs it with apt on CI. Playwright never downloads a browser here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from streamlit_driver import (  # noqa: E402
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    AppServer,
    chromium_available,
    leaves_machine,
    screenshot,
)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not chromium_available():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} "
                    "(`apt-get install chromium`; scripts/test.sh installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def app_factory(tmp_path):
    """Start apps on fresh workspaces; every one (and its worker) is stopped at teardown."""
    started: list[AppServer] = []

    def make(workspace: Path | None = None, args: list[str] | None = None, **env: str) -> AppServer:
        ws = workspace or tmp_path / f"ws{len(started)}"
        server = AppServer(ws, ARTIFACTS / "logs" / tmp_path.name, extra_env=env, extra_args=args)
        started.append(server)
        server.start()
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_OUTCOME] = report
    return report


_OUTCOME = pytest.StashKey()


@pytest.fixture
def page(browser, request):
    """A fresh browser context; on failure its last screen is kept as FAILED-<test>.png.

    Every request the page makes is checked: one to a host other than 127.0.0.1 fails the test, as
    the app promises that nothing leaves the machine (fonts and icons included)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(float(os.environ.get("SSLAPP_BROWSER_TIMEOUT_MS", "60000")))
    outside: list[str] = []
    context.on("request", lambda req: outside.append(req.url) if leaves_machine(req.url) else None)
    pg = context.new_page()
    pg.outside_requests = outside  # tests may look, the teardown asserts
    yield pg
    report = request.node.stash.get(_OUTCOME, None)
    if report is not None and report.failed:
        try:
            screenshot(pg, f"FAILED-{request.node.name}")
        except Exception:  # the page may be gone; the failure itself is what matters
            pass
    context.close()
    assert not outside, f"the page made requests that leave 127.0.0.1: {sorted(set(outside))[:10]}"
