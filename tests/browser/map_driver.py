"""Drive the Explore page's plotly map with the mouse: pick a modebar tool, find points, drag shapes."""

from __future__ import annotations

from streamlit_driver import wait_ready

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


MODEBAR_PX = 40  # the modebar sits over the plot's top edge; shapes start below it


def chart_points(page):
    chart = page.locator(".st-key-explore_map")
    chart.locator(".js-plotly-plot").wait_for()
    page.wait_for_function("() => { const g = document.querySelector('.st-key-explore_map .js-plotly-plot');"
                           " return g && g._fullData && g._fullData.length > 0; }")
    return chart.evaluate(POINTS_JS)


def pick_tool(page, tool):
    """Choose a modebar tool ("select" is the box, "lasso"), then wait for the page to stand still."""
    chart = page.locator(".st-key-explore_map")
    chart.scroll_into_view_if_needed()
    chart.hover()
    chart.locator(f'.modebar-btn[data-val="{tool}"]').click()
    page.wait_for_function(f"() => document.querySelector('.st-key-explore_map .js-plotly-plot')"
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
    box = page.locator(".st-key-explore_class")
    box.click()
    page.get_by_role("option", name=name, exact=True).click()
    wait_ready(page)


def apply_label(page, n):
    button = page.locator(".st-key-explore_apply_label button")
    page.wait_for_function(
        "(n) => { const b = document.querySelector('.st-key-explore_apply_label button');"
        " return b && b.innerText.includes(`Label ${n} selected`) && !b.disabled; }", arg=n)
    button.click()
    wait_ready(page)


