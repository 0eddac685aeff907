"""Drive the Explore page's plotly map with the mouse: pick a modebar tool, find points, drag shapes,
click a point, toggle a thumbnail of the selection grid; and a small mapped workspace to drive."""

from __future__ import annotations

import numpy as np
from PIL import Image
from streamlit_driver import select_option, wait_ready

from sslapp.workspace import open_workspace

# Screen position (page pixels) of every point of the map's trace, and its item id.
POINTS_JS = """
(el) => {
  const gd = el.querySelector('.js-plotly-plot');
  const fl = gd._fullLayout, tr = gd._fullData[0], box = gd.getBoundingClientRect();
  const out = [];
  for (let i = 0; i < tr.x.length; i++) {
    const cd = Array.isArray(tr.customdata[i]) ? tr.customdata[i][0] : tr.customdata[i];
    out.push([Number(cd), box.left + fl._size.l + fl.xaxis.l2p(tr.x[i]),
              box.top + fl._size.t + fl.yaxis.l2p(tr.y[i])]);
  }
  return {points: out, plot: [box.left + fl._size.l, box.top + fl._size.t, fl._size.w, fl._size.h]};
}
"""


# The map's container, never the copy Streamlit keeps marked stale while a rerun redraws the page (a fresh
# clone's run saw both at once after an undo: a strict-mode error).
MAP = '.st-key-explore_map:not([data-stale="true"])'
MODEBAR_PX = 4  # shapes start this far below the plot's top edge (the modebar sits in the margin above it)


def image_workspace(root, images, n=14, folder=None):
    """A workspace with `n` images in a few colour groups, and no map yet.

    `folder`: a subfolder the images sit in (like a class folder of the sample data).
    """
    from sslapp.ingest.ingest import ingest

    where = images / folder if folder else images
    where.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(n):
        base = np.array([(220, 30, 30), (30, 30, 220), (30, 200, 30), (230, 230, 40)][i % 4], np.int16)
        a = np.clip(base + rng.integers(-25, 26, (24, 24, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(where / f"im{i:02d}.png")
    ws = open_workspace(root, cache_size=16)
    assert ingest(ws, [images], workers=1)["added"] == n
    return ws


def mapped_workspace(root, images, n=14, folder=None):
    """`image_workspace` with a (provisional) map computed, and the classes cat and dog.

    14 images keep the layout on PCA (UMAP starts at 15 and spends ~20 s CPU compiling numba code).
    """
    from sslapp.cli.common import run_job_in_foreground

    ws = image_workspace(root, images, n, folder)
    job = run_job_in_foreground(ws, "embed", {"provisional": True, "clusters": "kmeans"})
    assert job["status"] == "done", job["error"]
    ws.store.class_id("cat", create=True)
    ws.store.class_id("dog", create=True)
    return ws


def isolated_point(points: list) -> tuple[int, float, float]:
    """The (item id, x, y) farthest on screen from any other point: hover and click name it alone
    (nearly identical images sit on top of each other, and plotly then names one of them)."""
    xy = np.array([(x, y) for _, x, y in points], float)
    gaps = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    np.fill_diagonal(gaps, np.inf)
    return tuple(points[int(gaps.min(1).argmax())])


def map_box(page):
    """The map chart's bounding box once plotly has drawn it."""
    chart_points(page)
    return page.locator(MAP).bounding_box()


def hover_point(page, x, y) -> str:
    """Move the mouse onto a point and return the text of the hover box plotly shows."""
    page.mouse.move(x, y)
    text = page.locator(f"{MAP} .hoverlayer .hovertext").first
    text.wait_for()
    return text.text_content()


def click_point(page, x, y) -> str:
    """Click a point (in the default pan mode a click selects it); returns its hover text."""
    hover = hover_point(page, x, y)  # plotly selects the point its hover names
    page.mouse.click(x, y)
    wait_ready(page)
    return hover


def toggle_thumb(page, item_id, key="explore_grid"):
    """Click a thumbnail of the selection grid (leave it out, or take it back) and wait for the rerun.

    A button with a tooltip has a hidden twin for narrow screens, so the first one is the one shown.
    """
    cell = page.locator(f'[class*="st-key-{key}-c-"]:has(.st-key-{key}-t-{item_id})')
    before = cell.get_attribute("class")
    page.locator(f".st-key-{key}-t-{item_id} button").first.click()
    page.wait_for_function(
        "([key, id, before]) => { const b = document.querySelector(`.st-key-${key}-t-${id}`);"
        " const c = b && b.closest('[class*=\"st-key-' + key + '-c-\"]');"
        " return c && c.className !== before; }", arg=[key, item_id, before])
    wait_ready(page)


choose_option = select_option  # the Explore tests' name for it


def chart_points(page):
    chart = page.locator(MAP)
    chart.locator(".js-plotly-plot").wait_for()
    page.wait_for_function("() => { const g = document.querySelector('" + MAP + " .js-plotly-plot');"
                           " return g && g._fullData && g._fullData.length > 0; }")
    return chart.evaluate(POINTS_JS)


def pick_tool(page, tool):
    """Choose a modebar tool ("select" is the box, "lasso"), then wait for the page to stand still."""
    wait_ready(page)
    chart = page.locator(MAP)
    chart.scroll_into_view_if_needed()
    chart.hover()
    chart.locator(f'.modebar-btn[data-val="{tool}"]').click()
    page.wait_for_function(f"() => document.querySelector('{MAP} .js-plotly-plot')"
                           f"._fullLayout.dragmode === '{tool}'")


def drag(page, path, steps=6):
    page.mouse.move(*path[0])
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


def inside(poly, x, y) -> bool:
    """Even-odd rule, like plotly's lasso."""
    hit = False
    for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            hit = not hit
    return hit


def choose_class(page, name):
    choose_option(page, "explore_class", name)


def apply_label(page, n):
    button = page.locator(".st-key-explore_apply_label button")
    page.wait_for_function(
        "(n) => { const b = document.querySelector('.st-key-explore_apply_label button');"
        " return b && b.innerText.includes(`Label ${n} selected`) && !b.disabled; }", arg=n)
    button.click()
    wait_ready(page)


