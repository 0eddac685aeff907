"""What the Explore page shows and remembers: the cached map and predictions, point colours, hover
texts, the selection (kept in plain session-state keys, so it survives a page switch), and which items
the grid shows: the map selection, a cluster or every item, narrowed by a label filter (a class, or
"Model disagrees": labels the last label check or the newest classifier points to another class, for a bulk
review).

Session state: `explore_selection` (list of item ids: the map selection), `explore_grid` (which of
the shown images are left out, see `sslapp.ui.selection_grid`), `_explore_chart_seen` (the last
selection each chart reported), `_explore_from_chart` (the selection as the chart draws it itself),
`_explore_map_artifact` (the map the selection belongs to).
"""

from __future__ import annotations

import html
import textwrap

import numpy as np
import streamlit as st

from sslapp.curate.read import REVIEW_SETTING, flagged
from sslapp.maps.read import MapData, load_map
from sslapp.ui import selection_grid
from sslapp.ui.class_picker import majority
from sslapp.ui.common import file_name
from sslapp.ui.item_view import HOVER, clip, texts
from sslapp.ui.map import Coloring, categorical, selected_item_ids
from sslapp.workspace import Workspace

SELECTION = "explore_selection"
GRID = "explore_grid"
CHARTS = ("explore_map", "explore_closeup_map")
SEEN = "_explore_chart_seen"
FROM_CHART = "_explore_from_chart"
MAP_ID = "_explore_map_artifact"
MAP_SELECTION = "selection"  # the "Show" box's first option (not None: a restored None reads as "no choice")
ALL_ITEMS = "all"  # "Show": every item of the workspace (with a label filter: every label of a class, for review)
DISAGREES = "Model disagrees"  # the label filter: labels a model points away from (`disagreements`)
LABEL_FILTERS = ("All", "Unlabelled", "Labelled", DISAGREES)
BODY = "explore_body"  # the fragment of the view controls, the map and the panel: a label action reruns it
HOVER_MAX = 20_000  # above this many points the hover shows the item id only (keeps the payload small)
HOVER_LINE = 60  # characters per line of a text in the hover


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_map(root: str, artifact_id: int, _ws: Workspace) -> MapData | None:
    """Maps are immutable files, so one load per artifact serves every rerun."""
    art = next((a for a in _ws.store.artifacts("map", limit=50) if a["id"] == artifact_id), None)
    return load_map(_ws, art)


@st.cache_data(show_spinner=False, max_entries=4)
def _cached_predictions(root: str, run_id: int, _ws: Workspace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item_ids, class_ids, confidences) of one prediction run (fixed once written)."""
    rows = _ws.store.predictions(run_id)
    return (np.array([r["item_id"] for r in rows], np.int64), np.array([r["class_id"] for r in rows], np.int64),
            np.array([r["confidence"] for r in rows], np.float32))


def predictions(ws: Workspace):
    run_id = ws.store.latest_prediction_run_id()
    if run_id is None:
        return None
    return _cached_predictions(str(ws.root), int(run_id), ws)


@st.cache_data(show_spinner=False, max_entries=4)
def _base_names(root: str, artifact_id: int, _ws: Workspace) -> dict[int, str]:
    return {int(r["id"]): file_name(r["source"]) for r in _ws.store.items()}


@st.cache_data(show_spinner=False, max_entries=4)
def _snippets(root: str, artifact_id: int, _ws: Workspace) -> dict[int, str]:
    """Each text's start for the hover, as escaped HTML lines (empty for items without text)."""
    found = texts(_ws, _ws.store.items(), HOVER + 1)
    return {i: "<br>".join(html.escape(line) for line in textwrap.wrap(clip(t, HOVER), HOVER_LINE))
            for i, t in found.items()}


def coloring(ws: Workspace, m: MapData, mode: str, classes: list[dict]) -> Coloring:
    n = len(m.item_ids)
    class_pos = {c["id"]: i for i, c in enumerate(classes)}
    names = [c["name"] for c in classes]
    if mode == "cluster":
        k = int(m.cluster.max()) + 1 if n and (m.cluster >= 0).any() else 0
        return categorical(m.cluster, [m.cluster_name(i) for i in range(k)], "cluster")
    if mode == "label":
        codes = np.full(n, -1, np.int32)
        labels = ws.store.labels()
        rows = m.rows_of([r["item_id"] for r in labels])
        pos = {int(i): p for i, p in zip(m.item_ids[rows], rows, strict=True)}
        for r in labels:
            if r["item_id"] in pos:
                codes[pos[r["item_id"]]] = class_pos.get(r["class_id"], -1)
        return categorical(codes, names, "label")
    if mode in ("prediction", "confidence"):
        pred = predictions(ws)
        if mode == "prediction":
            codes = np.full(n, -1, np.int32)
            if pred is not None:
                rows = m.rows_of(pred[0])
                keep = np.isin(pred[0], m.item_ids)
                codes[rows] = [class_pos.get(int(c), -1) for c in pred[1][keep]]
            return categorical(codes, names, "predicted class")
        conf = np.zeros(n, np.float32)
        if pred is not None:
            conf[m.rows_of(pred[0])] = pred[2][np.isin(pred[0], m.item_ids)]
        return Coloring(conf, None, "confidence")
    codes = np.full(n, -1, np.int32)  # suggested next
    sugg = ws.store.open_suggestions()
    codes[m.rows_of([s["item_id"] for s in sugg])] = 0
    return categorical(codes, ["suggested next"], "suggested")


def _predicted(ws: Workspace, classes: list[dict]) -> dict[int, tuple[str, float]]:
    pred = predictions(ws)
    if pred is None:
        return {}
    names = {c["id"]: c["name"] for c in classes}
    return {int(i): (names.get(int(c), "?"), float(p)) for i, c, p in zip(*pred, strict=True)}


def item_info(ws: Workspace, m: MapData | None, item_ids: list[int], classes: list[dict]) -> dict[int, dict]:
    """Per item: file name (base name only), label, cluster (None off the map) and how pages name it, and
    prediction (name, p)."""
    items = ws.store.items(ids=item_ids)
    pred = _predicted(ws, classes)
    cluster: dict[int, int] = {}
    if m is not None:
        rows = m.rows_of(item_ids)
        cluster = {int(i): int(c) for i, c in zip(m.item_ids[rows], m.cluster[rows], strict=True)}
    return {r["id"]: {"name": file_name(r["source"]), "label": r["label"], "cluster": cluster.get(r["id"]),
                      "cluster_name": m.cluster_name(cluster.get(r["id"])) if m is not None else "off the map",
                      "prediction": pred.get(r["id"])} for r in items}


def hover_texts(ws: Workspace, m: MapData, classes: list[dict]) -> list[str] | None:
    """One hover text per map row: file name, a text's first ~120 characters, label, cluster and prediction
    (None above HOVER_MAX)."""
    if len(m.item_ids) > HOVER_MAX:
        return None
    names = _base_names(str(ws.root), int(m.artifact["id"]), ws)
    snippets = _snippets(str(ws.root), int(m.artifact["id"]), ws)
    labels = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
    pred = _predicted(ws, classes)
    out = []
    esc = html.escape
    for i, c in zip(m.item_ids.tolist(), m.cluster.tolist(), strict=True):
        text = f"<b>{esc(names.get(i, '?'))}</b> · #{i}"
        if i in snippets:
            text += f"<br><i>{snippets[i]}</i>"
        text += f"<br>label: {esc(labels.get(i) or '—')} · {esc(m.cluster_name(c))}"
        if i in pred:
            text += f"<br>predicted: {esc(pred[i][0])} ({pred[i][1]:.0%})"
        out.append(text)
    return out


# -- the selection -------------------------------------------------------------------------------
def selection_from_chart(event, key: str) -> None:
    """Copy a new, non-empty chart selection into the shared selection.

    Streamlit gives a chart a new identity whenever its figure changes (colours after labelling,
    for example), and the new chart reports an empty selection; so an empty event never clears the
    selection; the "Clear selection" button does.
    """
    ids = selected_item_ids(event)
    if not ids:
        return
    seen = st.session_state.setdefault(SEEN, {})
    signature = tuple(sorted(ids))
    if seen.get(key) != signature:
        seen[key] = signature
        st.session_state[SELECTION] = ids
        st.session_state[FROM_CHART] = signature
        st.session_state.pop("explore_msg", None)  # a message about the previous selection


def sync_from_charts() -> None:
    """Take what the charts hold now, before anything is drawn: a box drawn on the close-up or the
    overview decides which chart, message and grid this run shows."""
    for key in CHARTS:
        if key in st.session_state:
            selection_from_chart(st.session_state[key], key)


def clear_selection() -> None:
    st.session_state[SELECTION] = []
    st.session_state[SEEN] = {}
    st.session_state.pop(FROM_CHART, None)
    selection_grid.reset(GRID)


def start_run(artifact_id: int) -> None:
    """Once per page run: forget a selection made on another map; after a page switch the chart is
    new and shows no selection of its own, so the kept selection is highlighted instead."""
    st.session_state.setdefault(SELECTION, [])
    previous = st.session_state.get(MAP_ID)
    if previous is not None and previous != artifact_id:
        clear_selection()
        if st.session_state.get("explore_cluster") != ALL_ITEMS:  # a cluster of the old map means nothing now
            st.session_state["explore_cluster"] = MAP_SELECTION
    st.session_state[MAP_ID] = artifact_id
    if not any(key in st.session_state for key in CHARTS):
        st.session_state[SEEN] = {}
        st.session_state.pop(FROM_CHART, None)


def picked_source(value) -> str | int:
    """What "Show" picked: MAP_SELECTION, ALL_ITEMS or a cluster number."""
    if value in (None, MAP_SELECTION, ALL_ITEMS):
        return value or MAP_SELECTION
    return int(value)


def newer_map(ws: Workspace, drawn_id: int | None) -> bool:
    """Whether the workspace has a map other than the one drawn (a running embed job saved its first one)."""
    latest = ws.store.latest_artifact("map")
    return latest is not None and int(latest["id"]) != drawn_id


def _filtered(ws: Workspace, ids: list[int], label_of: dict[int, str | None], label_filter: str) -> list[int]:
    """`ids` narrowed by the label filter; `label_of` holds each active item's label (None: unlabelled)."""
    if label_filter == "Unlabelled":
        return [i for i in ids if i in label_of and label_of[i] is None]
    labelled = [i for i in ids if label_of.get(i) is not None]
    if label_filter == "Labelled":
        return labelled
    if label_filter == DISAGREES:
        other = disagreements(ws, {i: label_of[i] for i in labelled})
        return [i for i in labelled if i in other]
    return [i for i in labelled if label_of[i] == label_filter]


def disagreements(ws: Workspace, label_of: dict[int, str]) -> dict[int, str]:
    """{labelled item: the class a model points to instead of its label}.

    First the last "Check my labels" (each label predicted by models that never saw it: out of fold, so
    a wrong label shows), then the newest classifier's prediction, which learned from these very labels
    and so disagrees only with labels it could not fit."""
    predicted = ws.store.predicted_classes(list(label_of))
    other = {i: predicted[i] for i, label in label_of.items() if predicted.get(i) not in (None, label)}
    for row in (ws.store.get_setting(REVIEW_SETTING) or {}).get("rows") or []:
        item = int(row["item"])
        if label_of.get(item) == row["label"] and flagged(row):  # the label it checked is still the one given
            other[item] = row["suggested"]
    return other


def disagreement_class(ws: Workspace, item_ids: list[int]) -> str | None:
    """The class the models point to for more than half of `item_ids` (the picker's default when the
    grid shows disagreements: the label they hold is the one in question); None if no class is."""
    label_of = {r["id"]: r["label"] for r in ws.store.items(ids=item_ids) if r["label"] is not None}
    other = disagreements(ws, label_of)
    return majority([other.get(i) for i in item_ids], len(item_ids))


def can_disagree(ws: Workspace) -> bool:
    """Whether any model has spoken on the labels yet (a trained classifier or a label check)."""
    return ws.store.latest_prediction_run_id() is not None or bool(ws.store.get_setting(REVIEW_SETTING))


def target_ids(ws: Workspace, m: MapData, shown: str | int, label_filter: str) -> list[int]:
    """The items the grid shows: the map selection, a cluster or every item, narrowed by the label filter."""
    if shown == ALL_ITEMS:
        if label_filter == "All":
            return [i for i, _ in ws.store.item_ids_and_cache_index()]
        if label_filter == "Unlabelled":
            return ws.store.unlabeled_ids(include_skipped=True)
        label_of = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
        return _filtered(ws, list(label_of), label_of, label_filter)
    if shown == MAP_SELECTION:
        ids = [int(i) for i in st.session_state.get(SELECTION) or []]
    else:
        ids = [int(i) for i in m.item_ids[m.cluster == int(shown)]]
    if label_filter == "All" or not ids:
        return ids
    return _filtered(ws, ids, {r["id"]: r["label"] for r in ws.store.items(ids=ids)}, label_filter)


def fresh_targets(ws: Workspace, m: MapData) -> list[int]:
    """The images an action applies to (the kept ones), read when the click arrives.

    A click can interrupt the rerun that a new lasso started; the charts' widget state already holds
    that selection, so it is copied over first and the action hits what the user last selected
    (with nothing left out: the user has not seen that selection's grid yet).
    """
    sync_from_charts()
    label_filter = st.session_state.get("explore_label_filter") or "All"
    ids = target_ids(ws, m, picked_source(st.session_state.get("explore_cluster")), label_filter)
    return selection_grid.kept_ids(GRID, ids)
