"""Browser fixtures: the real app on a free local port and Debian's headless chromium.

The browser tests skip (with the reason) when /usr/bin/chromium is missing; `bash scripts/test.sh`
installs it with apt on CI. Playwright never downloads a browser here.

One app server per xdist worker serves the tests that need nothing of the server itself: each test
still gets its own workspace (opened by its `?ws=` link), its own worker process and its own
browser tab (the tabs share one browser context, and so its caches). A test that restarts the server, starts it with other flags or environment, or
publishes the README's screenshots (the sidebar differs) gets a server of its own (`fresh=True`).
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from streamlit_driver import (  # noqa: E402
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    AppServer,
    SharedApp,
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


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """The app serving every workspace under one SSLAPP_HOME, for this xdist worker's tests."""
    home = tmp_path_factory.mktemp("shared-app-home")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    server = AppServer(None, ARTIFACTS / "logs" / f"shared-{worker}", home=home)
    server.start()
    yield server
    server.stop()


_names = itertools.count()


@pytest.fixture
def app_factory(tmp_path, request):
    """Apps on the test's workspaces (a fresh one each by default); their workers are stopped at
    teardown. The app is the shared server unless the test asks for its own: `fresh=True`, server
    flags (`args`) or environment (`**env`)."""
    started: list[AppServer | SharedApp] = []

    def make(workspace: Path | None = None, args: list[str] | None = None, fresh: bool = False,
             **env: str) -> AppServer | SharedApp:
        ws = workspace or tmp_path / f"ws{len(started)}"
        if fresh or args or env:
            app = AppServer(ws, ARTIFACTS / "logs" / tmp_path.name, extra_env=env, extra_args=args)
            started.append(app)
            app.start()
            return app
        name = f"{re.sub(r'[^A-Za-z0-9._-]', '-', request.node.name)[:48]}-{next(_names)}"
        app = SharedApp(request.getfixturevalue("shared_server"), ws, name)
        started.append(app)
        return app

    yield make
    for app in started:
        app.stop()


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


VIEWPORT = {"width": 1600, "height": 1000}
_OUTSIDE: list[str] = []  # requests that left 127.0.0.1 during the running test


@pytest.fixture(scope="session")
def browser_context(browser):
    """One browser context for this xdist worker's tests: its HTTP and compiled-script caches keep the
    app's JavaScript, so a test's first page load costs a new tab's, not a new browser profile's
    (about 1.2 chromium CPU-seconds less each). Each test still gets its own tab, and so its own
    Streamlit session; cookies are cleared after each test."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(float(os.environ.get("SSLAPP_BROWSER_TIMEOUT_MS", "60000")))
    # the context's own listener sees every request (tabs, popups, workers); the running test's list holds them
    context.on("request", lambda req: _OUTSIDE.append(req.url) if leaves_machine(req.url) else None)
    yield context
    context.close()


@pytest.fixture
def page(browser_context, request):
    """A new tab in the worker's browser context; on failure its last screen is kept as FAILED-<test>.png.

    Every request the tab makes is checked: one to a host other than 127.0.0.1 fails the test, as
    the app promises that nothing leaves the machine (fonts and icons included)."""
    _OUTSIDE.clear()
    outside = _OUTSIDE
    pg = browser_context.new_page()  # at the context's viewport, whatever an earlier tab was set to
    pg.outside_requests = outside  # tests may look, the teardown asserts
    yield pg
    report = request.node.stash.get(_OUTCOME, None)
    if report is not None and report.failed:
        try:
            screenshot(pg, f"FAILED-{request.node.name}")
        except Exception:  # the page may be gone; the failure itself is what matters
            pass
    pg.close()
    browser_context.clear_cookies()
    assert not outside, f"the page made requests that leave 127.0.0.1: {sorted(set(outside))[:10]}"
