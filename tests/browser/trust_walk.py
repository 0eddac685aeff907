"""Issue 22's walk in the journey: an unbalanced labelling with two planted mistakes, More like this from a
rightly labelled point of the map, and "Check my labels" on the Train page (both mistakes among the 8
cards shown, Keep first in each, no primary button). Helpers the journey shares: the sample photos'
truth, a grid's item ids, text as the page shows it."""

from __future__ import annotations

import re
import sys

from map_driver import chart_points, click_point, pick_tool
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from streamlit_driver import ROOT, body_text, nav, screenshot, until_done, wait_ready

from sslapp.curate.read import REVIEW_SETTING, flagged
from sslapp.store.states import ACTIVE_JOB_STATES
from sslapp.ui.common import DEFAULT_ANNOTATOR
from sslapp.words import count

sys.path.insert(0, str(ROOT / "tests"))
from test_faults import wait_for  # noqa: E402

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# the labelling of issue 22's walk: one big class, a few labels of every other, two mistakes in the big one
BIG, BIG_COUNT, PER_CLASS = "ship", 24, 4
PLANTED = ("cat", "bird")  # true classes of the two images bulk-labelled BIG by mistake
SHOWN = 8  # the review cards the Train page shows


def truth(ws, item_id: int) -> str:
    """The sample image's class: its folder (the test knows it; the app shows file names only)."""
    return ws.store.item(item_id)["source"].replace("\\", "/").split("/")[-2]


def grid_ids(scope, key) -> list[int]:
    cells = scope.locator(f'[class*="st-key-{key}-t-"]')
    try:
        cells.first.wait_for()
    except Exception as exc:  # say what is shown instead of the grid
        raise AssertionError(f"no {key} grid; shown: {scope.first.inner_text()[:1500]}") from exc
    return sorted({int(re.search(rf"{key}-t-(\d+)", cells.nth(i).get_attribute("class")).group(1))
                   for i in range(cells.count())})


def plain(text: str) -> str:
    """Text as a page shows it: markdown marks gone, whitespace collapsed."""
    return " ".join(re.sub(r"[*_`\\]", "", text).split())


def unbalanced_labelling(ws) -> tuple[dict[int, str], dict[str, int]]:
    """Issue 22's labelling on top of what the walk labelled: BIG_COUNT right labels of BIG, PER_CLASS of
    every other class, and one cat and one bird labelled BIG by mistake, all chosen by sorted source
    path among the images the walk left unlabelled. Each class's extra labels are one bulk label, as from
    Explore's "Label N selected", and the two mistakes ride in BIG's, as a selection that let them slip
    through. Returns ({item: class given} of every new label, {planted true class: item})."""
    labelled = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
    free: dict[str, list[int]] = {}
    for row in sorted(ws.store.items(), key=lambda r: r["source"]):
        if row["id"] not in labelled:
            free.setdefault(truth(ws, row["id"]), []).append(int(row["id"]))
    right = {name: sum(1 for i, c in labelled.items() if c == name == truth(ws, i)) for name in CLASSES}
    given: dict[int, str] = {}
    for name in CLASSES:
        more = max(0, (BIG_COUNT if name == BIG else PER_CLASS) - right[name])
        given.update(dict.fromkeys(free[name][:more], name))
        free[name] = free[name][more:]
    planted = {kind: free[kind][0] for kind in PLANTED}
    given.update(dict.fromkeys(planted.values(), BIG))
    for name in CLASSES:  # the real store calls the Explore page makes (no mock): one bulk label a class
        ids = [i for i, c in given.items() if c == name]
        if ids:
            ws.store.set_labels(ids, ws.store.class_id(name, create=True), source="user", action="bulk-label",
                                annotator=DEFAULT_ANNOTATOR)
    return given, planted


CARD_JS = """(id) => {
  let card = document.querySelector(`.st-key-rv_keep_${id}`);
  while (card && !card.querySelector(`.st-key-rv_similar_${id}`)) card = card.parentElement;
  if (!card) return null;
  return Array.from(card.querySelectorAll('[class*="st-key-rv_"]'))
    .map(el => [el, el.querySelector('[data-testid^="stBaseButton"]')]).filter(([, b]) => b)
    .map(([el, b]) => [el.className.match(/st-key-(rv_[a-z]+)_/)[1], b.innerText.trim(), b.dataset.testid]);
}"""


def no_exception(page):
    assert page.locator('[data-testid="stException"]').count() == 0, body_text(page)[:3000]


def check_my_labels_walk(page, ws, dialog, width: int, height: int, slow_s: float) -> dict[int, str]:
    """The walk after the journey's Train step (`dialog`: the page's dialog locator; the viewport's size;
    the longest wait for a job); returns {item: class} of the labels it added."""
    given, planted = unbalanced_labelling(ws)
    labels = {r["item_id"]: r["class_name"] for r in ws.store.labels(sources=("user",))}
    assert sum(1 for i, c in labels.items() if c == BIG == truth(ws, i)) == BIG_COUNT
    assert all(labels[i] == BIG and truth(ws, i) == kind for kind, i in planted.items())

    # More like this on a rightly labelled point of the map opens on its label, ready to apply
    nav(page, "Explore")
    chart_points(page)
    pick_tool(page, "pan")  # the walk picked the box tool earlier; in pan mode a click selects the point
    wait_ready(page)
    points = chart_points(page)["points"]
    xy = {p[0]: (p[1], p[2]) for p in points}

    def gap(i):  # on screen, to the nearest other point: the click must name this one alone
        return min((xy[i][0] - x) ** 2 + (xy[i][1] - y) ** 2 for j, x, y in points if j != i)

    query = max((i for i, c in labels.items() if c == truth(ws, i) and i in xy), key=gap)
    query_class = labels[query]
    hover = click_point(page, *xy[query])
    assert re.search(rf"#{query}(?!\d)", hover) and f"label: {query_class}" in hover, hover
    preview = page.locator(".st-key-explore_preview")
    preview.get_by_text(f"#{query}").wait_for()
    wait_ready(page)

    def open_from_preview() -> None:
        wait_ready(page)
        try:  # a click that meets a redraw is retried by until_done
            page.locator(".st-key-explore_similar button").first.click(timeout=10_000)
        except PlaywrightTimeoutError:
            pass

    until_done(open_from_preview, lambda: dialog.get_by_text("Images most like").count() > 0,
               what="More like this from the preview")
    wait_ready(page)
    assert query not in grid_ids(dialog, "similar_grid")
    picker = dialog.locator(".st-key-similar_class input").first
    assert picker.input_value() == query_class, (picker.input_value(), query_class)  # the query's class, no other
    apply = dialog.locator(".st-key-similar_apply button")
    assert apply.is_enabled() and apply.inner_text().strip() == f"Label {count(20, 'image')}", apply.inner_text()
    before = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
    dialog.get_by_role("button", name="Close").click()  # closed without labelling: nothing changes
    dialog.wait_for(state="detached")
    wait_ready(page)
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == before

    # "Check my labels": both mistakes among the 8 cards shown; each card offers Keep first, nothing primary
    nav(page, "Train")
    reviews = len(ws.store.jobs(kind="review"))

    def check_my_labels() -> None:
        wait_ready(page)
        try:  # a click that meets a redraw is retried by until_done
            page.locator(".st-key-review_start button").click(timeout=10_000)
        except PlaywrightTimeoutError:
            pass

    until_done(check_my_labels, lambda: len(ws.store.jobs(kind="review")) > reviews, what="the review job")
    wait_for(lambda: ws.store.jobs(kind="review", limit=1)[0]["status"] not in ACTIVE_JOB_STATES,
             timeout=slow_s, what="the review job's end")
    job = ws.store.jobs(kind="review", limit=1)[0]
    assert job["status"] == "done", job
    review = ws.store.get_setting(REVIEW_SETTING)
    assert review["n_labels"] == len(labels), (review["n_labels"], len(labels))
    listed = [r for r in review["rows"] if flagged(r)]
    ranks = {kind: next((n for n, r in enumerate(listed) if r["item"] == i), None) for kind, i in planted.items()}
    page.get_by_text(re.compile(r"may be wrong|No likely label errors")).first.wait_for(timeout=60_000)
    wait_ready(page)
    no_exception(page)
    # the cards sit below the first screen, and Streamlit scrolls inside the page: a viewport as tall as
    # the page puts them in the screenshot
    tall = page.locator('[data-testid="stMain"]').evaluate("el => el.scrollHeight")
    page.set_viewport_size({"width": width, "height": min(max(height, tall + 100), 6000)})
    wait_ready(page)
    screenshot(page, "review")
    page.set_viewport_size({"width": width, "height": height})
    wait_ready(page)
    section = body_text(page)
    assert f"Checked {count(len(labels), 'label')}" in section, section[:3000]
    cards = page.locator('[class*="st-key-rv_keep_"]')
    shown = [int(re.search(r"st-key-rv_keep_(\d+)", cards.nth(n).get_attribute("class")).group(1))
             for n in range(cards.count())]
    assert 0 < len(shown) <= SHOWN and len(set(shown)) == len(shown), shown
    # (id, truth, label, suggested, odds) of every label listed, most suspicious first: said on a failure
    what = [(r["item"], truth(ws, r["item"]), r["label"], r["suggested"], r["odds"]) for r in listed]
    for kind, i in planted.items():
        assert i in shown, (f"the planted {kind} #{i} is not among the cards shown (rank {ranks[kind]} of "
                            f"{len(listed)} listed, with {review['embedding']})", shown, what)
    for i in shown:
        buttons = page.locator('[data-testid="stMain"]').evaluate("(_, id) => (" + CARD_JS + ")(id)", i)
        assert buttons, f"no card for #{i}"
        assert buttons[0][:2] == ["rv_keep", f"Keep {labels[i]}"], buttons  # keep first: no change by default
        assert [b[0] for b in buttons][:2] == ["rv_keep", "rv_fix"], buttons
        assert all(b[2] != "stBaseButton-primary" for b in buttons), buttons
    primary = page.locator('[data-testid="stMain"] [data-testid="stBaseButton-primary"]').all_inner_texts()
    assert not [t for t in primary if t.strip().startswith(("Keep", "Change to", "Label as", "Remove label"))], primary
    assert not page.locator('[class*="st-key-rv_"] [data-testid="stBaseButton-primary"]').count()
    return given
