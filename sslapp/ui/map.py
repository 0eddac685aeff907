"""Plotly figures of the map: one WebGL scatter for the overview, thumbnails for a close-up.

One trace keeps selection simple (item ids ride in `customdata`) and keeps 100k points fast:
colours are a `marker.color` array, categories a discrete colourscale, and a small annotation
stands in for the legend instead of one trace per colour. The 26 colours are far apart (CIELAB distance
above 25, none near the grey of "none" or the white background); past 26 categories they repeat with
another marker shape, which the legend draws too.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

COLOR_MODES = {
    "cluster": "Cluster",
    "label": "Label",
    "prediction": "Predicted class",
    "confidence": "Confidence",
    "suggested": "Suggested next",
}
# tab10 without its grey, then the colour farthest from all chosen so far (and from white, black and
# NONE_COLOR) among readable ones, picked once in CIELAB: 20+ classes stay told apart
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#0000ff", "#ff1eff", "#005a3c", "#690fb4", "#f0b478", "#ff0078", "#69690f", "#0078ff", "#960f4b",
           "#00d2a5", "#ff8787", "#a5c378", "#964b00", "#c300a5", "#00d200", "#b4b4f0", "#d269ff"]
# (plotly symbol, the legend's glyph for it): the shape of each further round of the palette
SYMBOLS = [("circle", "●"), ("square", "■"), ("diamond", "◆"), ("triangle-up", "▲"), ("x", "✖")]
NONE_COLOR = "#c7c7c7"
MAX_OVERVIEW_POINTS = 50_000  # above this the overview shows a uniform sample (selection stays exact)
MAX_CLOSEUP = 300
# Up to here the map is drawn as SVG, above it with WebGL. Without GPU acceleration (many laptops' and
# remote desktops' browsers) WebGL is emulated on the CPU and costs more than SVG for small maps.
SVG_MAX_POINTS = 1_000
LEGEND_LINE_PX = 15  # one legend line at font size 11 (plotly spaces lines 1.3 em)
MORE_HINT = "hover for all"
LEGEND_CHARS = 24  # a longer class name is cut (with "…") in the legend; the hover says it whole
MAP_HEIGHT = 650
AXIS_PAD = 0.03  # each axis spans the points plus this share of their extent on both ends
MODEBAR_MARGIN = 34  # the modebar sits in this top margin, above the points
# the chart's toolbar: selection, zoom, pan and reset only (no logo, no image export)
MAP_CONFIG = {"displaylogo": False, "scrollZoom": True, "displayModeBar": True,
              "modeBarButtonsToRemove": ["toImage", "autoScale2d", "zoomIn2d", "zoomOut2d", "toggleSpikelines",
                                         "hoverClosestCartesian", "hoverCompareCartesian"]}


@dataclass
class Coloring:
    """Per-point colour codes plus what they mean: categories (code i -> name) or a continuous range."""

    values: np.ndarray
    categories: list[str] | None = None  # None: continuous in [0, 1]
    title: str = ""


def categorical(codes: np.ndarray, names: Sequence[str], title: str) -> Coloring:
    """codes: -1 for 'none' (grey), 0..len(names)-1 otherwise."""
    return Coloring(np.asarray(codes, np.int32), list(names), title)


def category_style(index: int) -> tuple[str, str, str]:
    """Category `index`'s (colour, plotly marker symbol, legend glyph): the palette's colours in turn,
    with the next shape each time the colours run out, so no two of the first 130 categories look alike."""
    symbol, glyph = SYMBOLS[(index // len(PALETTE)) % len(SYMBOLS)]
    return PALETTE[index % len(PALETTE)], symbol, glyph


def legend_rows(height: int = MAP_HEIGHT, title: str | None = None) -> int:
    """How many category lines the legend box shows in a plot of `height` px (two more lines say
    how many are left out and how many have none)."""
    plot = height - MODEBAR_MARGIN - (26 if title else 0) - 4
    return max(3, plot // LEGEND_LINE_PX - 2)


def _discrete_scale(n: int) -> list[list]:
    """A step colourscale for codes 0..n with cmin=-0.5, cmax=n+0.5: grey for 0 (no category)."""
    colors = [NONE_COLOR] + [category_style(i)[0] for i in range(n)]
    m = len(colors)
    scale = []
    for i, c in enumerate(colors):
        scale += [[i / m, c], [(i + 1) / m, c]]
    return scale


def _marker(coloring: Coloring, size: float, highlight: np.ndarray | None = None) -> dict:
    if coloring.categories is None:
        v = np.asarray(coloring.values, np.float32)
        marker = dict(color=np.nan_to_num(v, nan=0.0), colorscale="Viridis", cmin=0.0, cmax=1.0, size=size,
                      showscale=True, colorbar=dict(title=dict(text=coloring.title), thickness=10, len=0.5))
    else:
        n = len(coloring.categories)
        # shifted to 0..n in the smallest unsigned type: -1 would serialise as base64 '////', which
        # plotly's JSON escapes to '\u002f' (6x), doubling a 100k-point payload
        codes = (np.asarray(coloring.values) + 1).astype(np.uint8 if n < 255 else np.uint16)
        marker = dict(color=codes, colorscale=_discrete_scale(n), cmin=-0.5, cmax=n + 0.5,
                      size=size, showscale=False)
        if n > len(PALETTE):  # colours repeat: the shape tells the rounds apart
            shapes = np.array(["circle"] + [category_style(i)[1] for i in range(n)])
            marker["symbol"] = shapes[codes]
    if highlight is not None:
        marker["size"] = np.where(highlight, size * 2.2, size).astype(np.float32)
    return marker


def _legend_name(name: str) -> str:
    """The name as the legend box shows it: whole up to LEGEND_CHARS, else cut with an ellipsis."""
    return name if len(name) <= LEGEND_CHARS else name[:LEGEND_CHARS - 1].rstrip() + "…"


def _legend_shown(n: int, height: int, title: str | None) -> int:
    """How many of `n` categories the legend lists (never "… 1 more" where that one fits)."""
    rows = legend_rows(height, title)
    return n if n <= rows + 1 else rows


def legend_annotation(coloring: Coloring, counts: np.ndarray | None = None, height: int = MAP_HEIGHT,
                      title: str | None = None) -> dict | None:
    """A legend-like text box: each category's mark (colour and shape) and name (and point count), as
    many as the plot's height holds; hovering the box lists them all with their whole names."""
    if coloring.categories is None:
        return None
    names = coloring.categories
    shown = _legend_shown(len(names), height, title)
    lines, whole = [], []
    for i, name in enumerate(names):
        color, _, glyph = category_style(i)
        count = f" ({int(counts[i + 1])})" if counts is not None else ""
        whole.append(f"{glyph} {html.escape(name)}{count}")
        if i < shown:
            lines.append(f"<span style='color:{color}'>{glyph}</span> {html.escape(_legend_name(name))}{count}")
    if len(names) > shown:
        lines.append(f"… {len(names) - shown} more: {MORE_HINT}")
    if counts is not None and counts[0]:
        lines.append(f"<span style='color:{NONE_COLOR}'>●</span> none ({int(counts[0])})")
    # in the right margin (see legend_width), below the modebar's strip: it hides no point and no tool
    return dict(text="<br>".join(lines), xref="paper", yref="paper", x=1.0, y=1.0, xanchor="left",
                xshift=8, yanchor="top", showarrow=False, align="left", bgcolor="rgba(255,255,255,0.8)",
                bordercolor="#ddd", borderwidth=1, font=dict(size=11),
                hovertext="<br>".join(whole) if len(names) > shown or any(_legend_name(n) != n for n in names)
                else None)


def legend_width(coloring: Coloring | None, height: int = MAP_HEIGHT, title: str | None = None) -> int:
    """Right margin (px) that holds the legend box or the colour bar."""
    if coloring is None:
        return 4
    if coloring.categories is None:
        return 70
    names = coloring.categories
    longest = max((len(_legend_name(n)) for n in names), default=4)
    if len(names) > _legend_shown(len(names), height, title):
        longest = max(longest, len(MORE_HINT) + 4)
    return int(min(max(longest, 6) * 6.6 + 62, LEGEND_CHARS * 6.6 + 62))


def overview_rows(n: int, max_points: int = MAX_OVERVIEW_POINTS, keep: np.ndarray | None = None,
                  seed: int = 0) -> np.ndarray:
    """Rows to draw: all of them, or a uniform sample of `max_points` plus every row in `keep`."""
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    rows = rng.choice(n, size=max_points, replace=False)
    if keep is not None and len(keep):
        rows = np.union1d(rows, keep)
    return np.sort(rows)


def axis_ranges(xy: np.ndarray, pad: float = AXIS_PAD) -> tuple[list[float], list[float]] | None:
    """([x0, x1], [y0, y1]): each axis spans the points' own extent plus `pad` of it on both ends, so
    no edge point is cut (None without finite points). The axes are set apart, not to one scale: a 2-D
    layout's aspect means nothing, and a wide plot is then filled instead of leaving empty sides."""
    xy = np.asarray(xy).reshape(-1, 2)
    if not len(xy):
        return None
    # column by column: numpy's min over axis 0 of an (N, 2) array takes 5 ms at 100k points, this 0.2 ms
    lows, highs = np.array([xy[:, 0].min(), xy[:, 1].min()]), np.array([xy[:, 0].max(), xy[:, 1].max()])
    if not (np.isfinite(lows).all() and np.isfinite(highs).all()):  # a map's points are finite; else skip the rest
        xy = xy[np.isfinite(xy).all(axis=1)]
        if not len(xy):
            return None
        lows, highs = xy.min(axis=0), xy.max(axis=0)
    ranges = []
    for lo, hi in zip(lows.astype(float), highs.astype(float), strict=True):
        margin = (hi - lo) * pad if hi > lo else max(abs(lo) * pad, 0.5)
        ranges.append([float(lo - margin), float(hi + margin)])
    return ranges[0], ranges[1]


def _layout(fig: go.Figure, height: int, title: str | None, right: int = 4,
            ranges: tuple[list[float], list[float]] | None = None) -> None:
    xaxis, yaxis = dict(visible=False), dict(visible=False)
    if ranges is not None:
        xaxis["range"], yaxis["range"] = ranges
    fig.update_layout(
        height=height, margin=dict(l=4, r=right, t=MODEBAR_MARGIN + (26 if title else 0), b=4), title=title,
        # pan by default: Streamlit selects a clicked point only outside the lasso and box tools
        dragmode="pan", clickmode="event+select", hovermode="closest", showlegend=False,
        plot_bgcolor="white", uirevision="map",  # keep zoom and selection across reruns
        hoverlabel=dict(bgcolor="white", font=dict(size=12), align="left"),
        xaxis=xaxis, yaxis=yaxis)


def map_figure(xy: np.ndarray, item_ids: np.ndarray, coloring: Coloring, selected: np.ndarray | None = None,
               hover: Sequence[str] | None = None, height: int = MAP_HEIGHT, title: str | None = None,
               max_points: int = MAX_OVERVIEW_POINTS) -> go.Figure:
    """The overview: one scatter trace (SVG up to SVG_MAX_POINTS, WebGL above), item ids in customdata,
    selected rows drawn larger.

    hover: one text per point (file name, label, cluster, prediction); without it the hover says
    the item id."""
    n = len(item_ids)
    sel_mask = np.zeros(n, bool)
    if selected is not None and len(selected):
        sel_mask[selected] = True
    rows = overview_rows(n, max_points, keep=np.flatnonzero(sel_mask))
    size = float(np.clip(9 - np.log10(max(n, 10)) * 1.5, 2.5, 7))
    c = Coloring(coloring.values[rows], coloring.categories, coloring.title)
    kind = go.Scatter if len(rows) <= SVG_MAX_POINTS else go.Scattergl
    trace = kind(
        x=xy[rows, 0], y=xy[rows, 1], mode="markers", customdata=np.asarray(item_ids, np.int32)[rows],
        marker=_marker(c, size, sel_mask[rows] if sel_mask.any() else None),
        hovertemplate="item %{customdata}<extra></extra>" if hover is None else "%{text}<extra></extra>",
        text=None if hover is None else [hover[i] for i in rows])
    fig = go.Figure(trace)
    _layout(fig, height, title, right=legend_width(coloring, height, title), ranges=axis_ranges(xy[rows]))
    counts = None
    if coloring.categories is not None:
        counts = np.bincount(np.asarray(coloring.values) + 1, minlength=len(coloring.categories) + 1)
    ann = legend_annotation(coloring, counts, height, title)
    if ann:
        fig.add_annotation(**ann)
    return fig


@lru_cache(maxsize=4096)
def thumb_data_uri(path: str) -> str | None:
    """A thumbnail file as a data: URI (no network); None when the file is missing."""
    p = Path(path)
    if not p.exists():
        return None
    return "data:image/jpeg;base64," + base64.b64encode(p.read_bytes()).decode("ascii")


def closeup_figure(xy: np.ndarray, item_ids: np.ndarray, thumb_paths: Sequence[str | Path],
                   coloring: Coloring | None = None, height: int = MAP_HEIGHT, title: str | None = None,
                   hover: Sequence[str] | None = None) -> go.Figure:
    """The images themselves at their map positions (<= MAX_CLOSEUP points), selectable like the overview."""
    n = len(item_ids)
    if n > MAX_CLOSEUP:
        raise ValueError(f"a close-up draws at most {MAX_CLOSEUP} images, not {n}; select fewer points")
    xy = np.asarray(xy, np.float32)
    fig = go.Figure()
    ranges = None
    if n:
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-3))
        side = span / max(np.sqrt(n) * 1.3, 1.0)  # images about as big as the spacing of a grid of n
        images = []
        for (x, y), path in zip(xy, thumb_paths, strict=True):
            uri = thumb_data_uri(str(path))
            if uri:
                images.append(dict(source=uri, xref="x", yref="y", x=float(x), y=float(y), sizex=side,
                                   sizey=side, xanchor="center", yanchor="middle", sizing="contain", layer="above"))
        fig.update_layout(images=images)
        ranges = ([float(lo[0]) - side, float(hi[0]) + side], [float(lo[1]) - side, float(hi[1]) + side])
    marker = dict(size=10, opacity=0.35, color="#888")
    if coloring is not None:
        marker = {**_marker(coloring, 14), "opacity": 0.45, "showscale": False}
    fig.add_trace(go.Scatter(x=xy[:, 0] if n else [], y=xy[:, 1] if n else [], mode="markers",
                             customdata=np.asarray(item_ids), marker=marker, text=None if hover is None else list(hover),
                             hovertemplate="item %{customdata}<extra></extra>" if hover is None
                             else "%{text}<extra></extra>"))
    _layout(fig, height, title, right=legend_width(coloring, height, title), ranges=ranges)
    if coloring is not None:
        ann = legend_annotation(coloring, height=height, title=title)
        if ann:
            fig.add_annotation(**ann)
    return fig


def selected_item_ids(event) -> list[int]:
    """Item ids of the points in a `st.plotly_chart(on_select=...)` event (from customdata)."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError, AttributeError):
        return []
    ids = []
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(cd, list | tuple):
            cd = cd[0] if cd else None
        if cd is not None:
            try:
                ids.append(int(cd))
            except (TypeError, ValueError):
                continue
    return list(dict.fromkeys(ids))
