"""The Explore map's colours and legend (issue 22): 20+ classes told apart, and a legend that lists them
in the right margin, whole or with the rest a hover away, never cut by the figure's edge."""

from __future__ import annotations

import numpy as np

from sslapp.ui.map import (
    LEGEND_LINE_PX,
    MAP_HEIGHT,
    MODEBAR_MARGIN,
    NONE_COLOR,
    categorical,
    category_style,
    legend_rows,
    map_figure,
)


def lab(hex_colors: list[str]) -> np.ndarray:
    """sRGB hex colours in CIELAB (D65), where a distance of ~2 is just noticeable."""
    rgb = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in hex_colors], float) / 255
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def scale_color(colorscale, code: int, n: int) -> str:
    """The colour a discrete colourscale (cmin -0.5, cmax n + 0.5) gives the marker value `code`."""
    t = (code + 0.5) / (n + 1)
    return next(c for lo, c in colorscale[::2] if lo <= t < lo + 1 / (n + 1) + 1e-9)


def test_24_classes_get_24_colours_far_apart_and_far_from_none_and_the_background():
    colors = [category_style(i)[0] for i in range(24)]
    assert len(set(colors)) == 24
    points = lab(colors)
    gaps = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() > 20, "two classes look alike"  # the old 20-colour palette had a pair at 4.6
    backdrop = lab([NONE_COLOR, "#ffffff"])
    assert np.linalg.norm(points[:, None] - backdrop[None], axis=-1).min() > 20
    # the figure draws each class in its colour, and 'none' in grey
    names = [f"class {i}" for i in range(24)]
    codes = np.arange(-1, 24)
    fig = map_figure(np.zeros((len(codes), 2), np.float32), np.arange(len(codes)), categorical(codes, names, "label"))
    scale = fig.data[0].marker.colorscale
    assert [scale_color(scale, v, 24) for v in fig.data[0].marker.color] == [NONE_COLOR, *colors]


def test_past_the_palette_classes_differ_by_shape_on_the_map_and_in_the_legend():
    styles = [category_style(i) for i in range(100)]
    assert len({(color, symbol) for color, symbol, _ in styles}) == 100
    names = [f"c{i}" for i in range(30)]
    fig = map_figure(np.zeros((30, 2), np.float32), np.arange(30), categorical(np.arange(30), names, "cluster"))
    symbols = list(fig.data[0].marker.symbol)
    assert symbols[0] != symbols[29] and symbols[29] == category_style(29)[1]
    assert category_style(29)[2] in fig.layout.annotations[0].text


def test_the_legend_lists_every_class_that_fits_and_hovers_the_rest_and_long_names():
    long = "a very long class name that would run off the figure"
    names = [long, *(f"class {i}" for i in range(1, 30))]
    fig = map_figure(np.zeros((30, 2), np.float32), np.arange(30), categorical(np.arange(30), names, "label"))
    legend = fig.layout.annotations[0]
    lines = legend.text.split("<br>")
    assert all(f"class {i} (1)" in legend.text for i in range(1, 30)) and "more" not in legend.text
    assert long not in legend.text and long in legend.hovertext  # cut in the box, whole on hover
    plot_px = MAP_HEIGHT - MODEBAR_MARGIN
    assert len(lines) * LEGEND_LINE_PX <= plot_px  # the box ends inside the figure
    # in the right margin, wide enough for the longest line shown (about 6.6 px a character at size 11)
    longest = max(len(line.split("</span>")[-1]) for line in lines)
    assert legend.xanchor == "left" and legend.x == 1.0 and fig.layout.margin.r >= longest * 6.6
    many = [f"k{i}" for i in range(80)]
    fig = map_figure(np.zeros((80, 2), np.float32), np.arange(80), categorical(np.arange(80) - 1, many, "cluster"))
    legend = fig.layout.annotations[0]
    rows = legend_rows()
    assert f"… {80 - rows} more" in legend.text and "none (1)" in legend.text
    assert (len(legend.text.split("<br>"))) * LEGEND_LINE_PX <= plot_px
    assert all(f"{name} (1)" in legend.hovertext for name in many[:-1])


def test_the_points_fill_the_plot_each_axis_spanning_their_own_extent_with_a_small_pad():
    from sslapp.ui.map import AXIS_PAD, closeup_figure

    # a wide cloud (10 x 1): one scale for both axes would leave the plot's top and bottom empty
    xy = np.array([[0.0, 0.0], [10.0, 1.0], [4.0, 0.5], [7.0, 0.2]], np.float32)
    fig = map_figure(xy, np.arange(4), categorical(np.zeros(4, np.int32), ["a"], "label"))
    assert fig.layout.yaxis.scaleanchor is None and fig.layout.xaxis.scaleanchor is None
    x0, x1 = fig.layout.xaxis.range
    y0, y1 = fig.layout.yaxis.range
    assert np.allclose([x0, x1], [-10 * AXIS_PAD, 10 + 10 * AXIS_PAD], atol=1e-6)
    assert np.allclose([y0, y1], [-AXIS_PAD, 1 + AXIS_PAD], atol=1e-6)
    assert 0 < AXIS_PAD <= 0.05  # edge points are not cut, and the pad stays small
    assert fig.layout.uirevision == "map"  # a user's zoom survives reruns
    # one point, or all on a line: a range of some width, centred on them
    flat = map_figure(np.array([[2.0, 3.0], [5.0, 3.0]], np.float32), np.arange(2),
                      categorical(np.zeros(2, np.int32), ["a"], "label"))
    lo, hi = flat.layout.yaxis.range
    assert lo < 3 < hi and np.isclose((lo + hi) / 2, 3)
    # the close-up keeps its own ranges (the images' half-width past the edge points)
    close = closeup_figure(xy, np.arange(4), ["/no/such/thumbnail.jpg"] * 4)
    assert close.layout.yaxis.scaleanchor is None
    assert close.layout.xaxis.range[0] < 0 and close.layout.xaxis.range[1] > 10
