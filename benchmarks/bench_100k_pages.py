"""Every page's first paint and a key label's round trip on a large workspace, in chromium (issue 23 item 3).

    .venv/bin/python benchmarks/bench_100k_pages.py WORKSPACE [--repeats 3]

WORKSPACE is one `benchmarks/bench_100k.py` left (100,000 images, a map, suggestions, a classifier).
The app runs as a user starts it (`streamlit run app.py`, its worker included) and Debian's chromium
walks it (`tests/browser/streamlit_driver`):
- first paint: from the click on a page's sidebar link to the end of that page's script run (its title
  drawn, Streamlit idle); for Explore also to the map's points drawn by plotly. The first visit of each
  page in a session and a later one are both reported;
- a key label's round trip: on the Label page, from the key press to the page showing "#ID → class"
  (the label stored and the next item drawn), for `--labels` keys.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.streamlit_driver import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    AppServer,
    nav,
    open_page,
    wait_ready,
)

PAGES = ["Pretrain", "Explore", "Label", "Train", "Export", "Data"]
POINTS_DRAWN = ("() => { const g = document.querySelector('.st-key-explore_map .js-plotly-plot');"
                " return g && g._fullData && g._fullData.length > 0 && g._fullData[0].x.length > 0; }")


def first_paint(page, title: str) -> tuple[float, float | None]:
    """(seconds to the page's script run done, seconds to the map's points drawn for Explore)."""
    t0 = time.monotonic()
    nav(page, title, timeout=120)
    done = time.monotonic() - t0
    drawn = None
    if title == "Explore":
        page.wait_for_function(POINTS_DRAWN, timeout=120_000)
        drawn = time.monotonic() - t0
    return done, drawn


def key_round_trip(page, key: str) -> float:
    import re

    wait_ready(page, 120)
    text = page.locator('[data-testid="stMain"]').inner_text()
    item = int(re.search(r"#(\d+) · ", text).group(1))
    page.locator('[data-testid="stMain"] h1').first.click()
    t0 = time.monotonic()
    page.keyboard.press(key)
    page.locator('[data-testid="stMain"]').get_by_text(f"#{item} → ", exact=False).first.wait_for(timeout=60_000)
    seconds = time.monotonic() - t0
    wait_ready(page, 120)
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("--repeats", type=int, default=2, help="visits of every page after the first")
    ap.add_argument("--labels", type=int, default=10, help="keys pressed on the Label page")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load {os.getloadavg()[0]:.2f} at the start", flush=True)
    server = AppServer(args.workspace, Path(os.environ.get("TMPDIR", "/tmp")) / "bench-100k-pages")
    server.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            t0 = time.monotonic()
            open_page(page, server, "data", timeout=120)
            print(f"app opened (Data, new session): {time.monotonic() - t0:.2f} s", flush=True)
            times: dict[str, list[float]] = {t: [] for t in PAGES}
            drawn: list[float] = []
            for visit in range(1 + args.repeats):
                for title in PAGES:
                    done, plot = first_paint(page, title)
                    times[title].append(done)
                    if plot is not None:
                        drawn.append(plot)
                    print(f"visit {visit + 1} {title}: {done:.2f} s" + (f", points drawn {plot:.2f} s" if plot else ""),
                          flush=True)
            for title in PAGES:
                print(f"{title}: first {times[title][0]:.2f} s, later median {statistics.median(times[title][1:]):.2f} s")
            print(f"Explore points drawn: first {drawn[0]:.2f} s, later median {statistics.median(drawn[1:]):.2f} s")
            nav(page, "Label", timeout=120)
            keys = [key_round_trip(page, "1") for _ in range(args.labels)]
            print(f"key label round trip over {len(keys)} keys: median {statistics.median(keys):.3f} s, "
                  f"max {max(keys):.3f} s (load {os.getloadavg()[0]:.2f})")
            browser.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
