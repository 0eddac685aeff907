"""Drive the real app: start `streamlit run app.py` on a free port and walk it in Debian's chromium.

No test here mocks the app. `AppServer` runs the same command a user runs (bound to 127.0.0.1, a
fresh workspace given by SSLAPP_WORKSPACE so no picker is needed) and stops it together with the
worker process it spawned. Started with a `home` instead, it is the app serving every workspace
under SSLAPP_HOME, and `SharedApp` is one test's workspace on it, opened by the `?ws=` link: one
server then serves many tests. The page helpers wait on Streamlit's own script-state attribute
instead of sleeping, so the tests stay fast on a busy 2-core machine.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("SSLAPP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots"
READY = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def kill_worker(workspace: Path) -> int | None:
    """SIGKILL the worker that serves `workspace` (pid from its settings, checked by command line)."""
    from sslapp.store import Store

    db = workspace / "sslapp.db"
    if not db.exists():
        return None
    store = Store(db)
    try:
        pid = (store.get_setting("worker") or {}).get("pid")
    finally:
        store.close()
    if not pid or not _pid_alive(int(pid)):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if "worker" not in cmdline or str(workspace.resolve()) not in cmdline:
        return None  # a recycled pid: not ours
    os.kill(int(pid), signal.SIGKILL)
    return int(pid)


class AppServer:
    """The app as a user starts it, in its own process group, on a free local port."""

    def __init__(self, workspace: Path | None, log_dir: Path, extra_env: dict[str, str] | None = None,
                 extra_args: list[str] | None = None, home: Path | None = None):
        self.workspace = Path(workspace) if workspace is not None else None
        self.home = Path(home) if home is not None else None  # SSLAPP_HOME: workspaces opened by ?ws=NAME
        self.log_dir = Path(log_dir)
        self.extra_env = extra_env or {}
        self.extra_args = extra_args or []
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page_url(self, path: str = "") -> str:
        return f"{self.url}/{path}"

    def start(self, timeout: float = 90.0) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
        if self.home is not None:
            env.pop("SSLAPP_WORKSPACE", None)
            env["SSLAPP_HOME"] = str(self.home)
        else:
            env["SSLAPP_WORKSPACE"] = str(self.workspace)
        env.update(self.extra_env)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(self.log_dir / f"streamlit-{self.starts}.log", "wb")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", *self.extra_args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"streamlit did not answer on {self.url} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        path = self.log_dir / f"streamlit-{self.starts}.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def stop_server(self) -> None:
        """Stop streamlit only (its process group); the worker, in its own session, lives on."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """The server goes away and comes back on the same port, as after a crash or a reboot."""
        self.stop_server()
        self.start()

    def stop(self) -> None:
        self.stop_server()
        if self.workspace is not None:
            kill_worker(self.workspace)


class SharedApp:
    """One test's workspace on a server shared by the tests of this xdist worker (`AppServer` with a
    home): the workspace is linked under the server's SSLAPP_HOME as `name` and every page is opened
    with `?ws=name`, so each browser session works in it; `stop` ends its worker, not the server."""

    def __init__(self, server: AppServer, workspace: Path, name: str):
        assert server.home is not None
        self.server = server
        self.workspace = Path(workspace)
        self.name = name
        self.workspace.mkdir(parents=True, exist_ok=True)  # the app makes the database, as on a first visit
        (server.home / name).symlink_to(self.workspace.resolve(), target_is_directory=True)

    @property
    def url(self) -> str:
        return self.server.url

    def page_url(self, path: str = "") -> str:
        return f"{self.server.url}/{path}?ws={self.name}"

    def stop(self) -> None:
        kill_worker(self.workspace)


# -- page helpers -----------------------------------------------------------------------------
def wait_ready(page, timeout: float = 60.0) -> None:
    """Wait until the script run (and any rerun it asked for) is over and the socket is up."""
    page.wait_for_selector(READY, timeout=timeout * 1000)
    page.wait_for_timeout(150)  # a rerun asked for at the end of a run starts within a tick
    page.wait_for_selector(READY, timeout=timeout * 1000)


DEFAULT_PAGE = "data"  # app.py's default page is served at "/", not at its url_path


def open_page(page, app: AppServer, path: str = "", timeout: float = 60.0) -> None:
    """Load a page by URL (a new browser session: session_state starts empty)."""
    page.goto(app.page_url("" if path == DEFAULT_PAGE else path))
    wait_ready(page, timeout)
    if page.get_by_text("Page not found").count():
        raise AssertionError(f"the app has no page at /{path}")


def nav(page, title: str, timeout: float = 60.0) -> None:
    """Go to a page through the sidebar, as a user does (keeps the browser session).

    Waits for the address to change to the page's url_path (title in lower case; the default page
    is "/") and for the page's own title, so the next step never acts on the previous page.
    """
    import re

    path = "" if title.lower() == DEFAULT_PAGE else title.lower()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    page.wait_for_url(re.compile(rf"://[^/]+/{path}(\?.*)?$"), timeout=timeout * 1000)
    page.locator('[data-testid="stMain"] h1').filter(has_text=title).first.wait_for(timeout=timeout * 1000)
    wait_ready(page, timeout)


def body_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def wait_for_text(page, text: str, timeout: float = 60.0) -> None:
    """Wait until `text` appears in the main area (reruns and fragments redraw it)."""
    page.locator('[data-testid="stMain"]').get_by_text(text, exact=False).first.wait_for(timeout=timeout * 1000)


def until_done(act, done, what: str, tries: int = 3, wait_s: float = 20.0) -> None:
    """Do `act`, then wait up to `wait_s` for `done()`; do it again if it did not take (`tries` in all).

    Streamlit drops a click or a key that meets a redraw started by a finishing background job (the
    button it aimed at is gone), or that lands before a page just loaded has drawn its buttons. A
    person does it again, and so do the tests, checking the outcome in the store or on the page.
    """
    for _ in range(tries):
        act()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.2)
    raise AssertionError(f"{what}: not done after {tries} tries, {wait_s:g} s each")


def click_button(page, label: str, exact: bool = False) -> None:
    page.get_by_role("button", name=label, exact=exact).first.click()
    wait_ready(page)


def label_with_key(page, key: str) -> int:
    """On the Label page: press a shortcut for the current image; returns its item id once stored.

    Waits for the page's own confirmation ("#ID → class") before the next key, as the buttons of a
    page that has not rerun yet still point at the previous image. A key that lands before a page
    just loaded has drawn its buttons is dropped (a fresh-clone run saw it): pressed again, as a
    person would, only when no confirmation came.
    """
    import re

    wait_ready(page)
    match = re.search(r"#(\d+) · ", body_text(page))
    assert match, "the Label page shows no current image"
    item = int(match.group(1))

    def press() -> None:
        page.evaluate("() => { const a = document.activeElement;"  # keys go to the page, not to a text box
                      " if (a && ['INPUT', 'TEXTAREA'].includes(a.tagName)) a.blur(); }")
        page.locator('[data-testid="stMain"] h1').first.click()  # the page, not the browser chrome, has focus
        page.keyboard.press(key)

    confirmed = page.locator('[data-testid="stMain"]').get_by_text(f"#{item} → ", exact=False)
    until_done(press, lambda: confirmed.count() > 0, what=f"key {key} on #{item}")
    wait_ready(page)
    return item


def shown_item(page, required: bool = True) -> int | None:
    """The item the Label page shows now (None while it redraws, unless `required`)."""
    import re

    match = re.search(r"#(\d+) · ", body_text(page))
    assert match or not required, body_text(page)[:2000]
    return int(match.group(1)) if match else None


def select_option(page, key: str, option: str, timeout: float = 60.0) -> None:
    """Pick `option` in the selectbox with widget key `key`.

    A rerun that a finishing job starts (the pages poll) redraws the selectbox and closes its open
    list, so the list is opened again until the option can be clicked.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        wait_ready(page, timeout)
        page.locator(f".st-key-{key}").click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.click(timeout=3000)
            wait_ready(page, timeout)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            page.keyboard.press("Escape")


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact (test-artifacts/screenshots/NAME.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("() => { for (const el of document.querySelectorAll('[data-testid=\"stMain\"], "
                  "[data-testid=\"stAppViewContainer\"]')) el.scrollTo(0, 0); window.scrollTo(0, 0); }")
    page.screenshot(path=str(path), full_page=True)
    return path


def publish_screenshots(names: list[str]) -> list[Path]:
    """Copy screenshots into docs/screenshots as small palette PNGs (when SSLAPP_UPDATE_SCREENSHOTS=1).

    Only on request, so an ordinary test run never dirties the checkout.
    """
    if os.environ.get("SSLAPP_UPDATE_SCREENSHOTS") != "1":
        return []
    from PIL import Image

    DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        src = SCREENSHOTS / f"{name}.png"
        if not src.exists():
            continue
        img = Image.open(src).convert("RGB")
        if img.width > 1280:
            img = img.resize((1280, round(img.height * 1280 / img.width)), Image.LANCZOS)
        buf = io.BytesIO()
        img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
        dst = DOC_SCREENSHOTS / f"{name}.png"
        dst.write_bytes(buf.getvalue())
        out.append(dst)
    return out


LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def leaves_machine(url: str) -> bool:
    """Whether a request goes anywhere but this machine (data: and blob: URLs stay in the page)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome", "chrome-extension"):
        return False
    return (parts.hostname or "") not in {h.strip("[]") for h in LOCAL_HOSTS}


def chromium_available() -> bool:
    return CHROMIUM.exists() and shutil.which(str(CHROMIUM)) is not None


def press_until_said(page, key: str, item: int, kind: str, tries: int = 3) -> None:
    """Press a class key on the Label page until it confirms "#ITEM → KIND", then wait for the run that drew it
    to end. A key that meets a page still drawing its buttons is dropped: pressed again, as a person would,
    only when no confirmation came."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    said = page.locator('[data-testid="stMain"]').get_by_text(f"#{item} → {kind}", exact=False)
    for attempt in range(tries):
        page.keyboard.press(key)
        try:
            said.first.wait_for(timeout=20_000)
            break
        except PlaywrightTimeoutError:
            if attempt == tries - 1:
                raise
    page.wait_for_selector(READY)  # the run that drew it is over (no other run follows a label)
