"""The Train page's review galleries: labels that look wrong, and items the classifier doubts (each drawn
by `sslapp.ui.item_view`: a thumbnail, a text's start with more of it on hover, or a sound's spectrogram
with its player).

1. Likely label errors: a button asks the worker for a "review" job (`sslapp.curate.review_job`:
   every label predicted by models that never saw it, calibrated, scored with cleanlab); the page polls
   it and shows the labels the features clearly contradict, each with keep (first: the check suggests,
   the person decides, so no change is ever the default) / change / another class / remove.
2. The classifier's doubts, from the latest training run's predictions: labelled images it
   predicts as another class, and the unlabelled images it is least sure about, each one click
   from a label. The run's classifier learned from every label, so a labelled image it still
   disagrees with is a strong hint (the held-out check of each label is the review above).
Every action writes the label at once (undoable on the Label page); nothing here trains or imports torch.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from sslapp.curate.read import (
    FLAG_ODDS,
    KEPT_SETTING,
    REVIEW_SETTING,
    TRUSTED_SOURCES,
    flagged,
    label_problem,
    odds_text,
)
from sslapp.store.states import ACTIVE_JOB_STATES, JobState
from sslapp.ui.common import annotator_name, file_name, item_words, job_status_line
from sslapp.ui.item_view import md_escape, show_item
from sslapp.ui.similar import more_like_this_button
from sslapp.words import count
from sslapp.workspace import Workspace

SHOW = 8  # images per gallery
COLUMNS = 4
MSG = "review_msg"


def _labels(ws: Workspace) -> dict[int, str]:
    return {int(r["item_id"]): r["class_name"] for r in ws.store.labels(sources=TRUSTED_SOURCES)}


def _name(ws: Workspace, item_id: int) -> str:
    item = ws.store.item(item_id)
    return f"**{md_escape(file_name(item['source']))}**" if item else f"the {item_words(ws)[0]}"


# -- actions (button callbacks: they run before the page is drawn again) ------------------------------
def _relabel(ws: Workspace, item_id: int, class_name: str) -> None:
    class_id = ws.store.class_id(class_name)
    if class_id is None:
        st.session_state[MSG] = f"There is no class '{class_name}' any more."
        return
    ws.store.set_labels([item_id], class_id, source="user", action="relabel", annotator=annotator_name())
    st.session_state[MSG] = f"Labelled {_name(ws, item_id)} as **{class_name}**."


def _relabel_chosen(ws: Workspace, item_id: int, key: str) -> None:
    choice = st.session_state.get(key)
    if choice:
        _relabel(ws, item_id, choice)


def _keep(ws: Workspace, item_id: int, class_name: str) -> None:
    kept = dict(ws.store.get_setting(KEPT_SETTING) or {})
    kept[str(item_id)] = class_name
    ws.store.set_setting(KEPT_SETTING, kept)
    st.session_state[MSG] = f"Kept **{class_name}** for {_name(ws, item_id)}; it will not be flagged again."


def _remove(ws: Workspace, item_id: int) -> None:
    ws.store.remove_labels([item_id], action="unlabel")
    st.session_state[MSG] = f"Removed the label of {_name(ws, item_id)}."


def _start_review(ws: Workspace) -> None:
    from sslapp.jobs.launcher import ensure_worker

    st.session_state["review_job"] = ws.store.enqueue_job("review", {})
    ensure_worker(ws)


# -- drawing -------------------------------------------------------------------------------------------
def _tile(ws: Workspace, item: dict[str, Any] | None) -> None:
    if item is None:
        return
    show_item(ws, item, chars=300, player=True)  # a sound is judged by ear: its player under its picture
    st.caption(md_escape(file_name(item["source"])))  # not its folder: that is often the class, the answer


def _other_classes(ws: Workspace, item_id: int, key: str, names: list[str], skip: tuple[str, ...]) -> None:
    others = [n for n in names if n not in skip]
    if others:
        st.selectbox("Another class", others, index=None, placeholder="another class…", key=key,
                     label_visibility="collapsed", on_change=_relabel_chosen, args=(ws, item_id, key))


def _review_status(ws: Workspace) -> None:
    """The newest review job while it runs (polled); redraws the page once when it ends."""
    jobs = ws.store.jobs(kind="review", limit=1)
    if not jobs:
        return
    job = jobs[0]
    if job["status"] in ACTIVE_JOB_STATES:
        st.caption(job_status_line(job, item_words(ws)[1]))
        st.session_state["review_waiting"] = job["id"]
        return
    if job["status"] == JobState.FAILED:
        st.error(f"Checking the labels failed: {job.get('error')}")
    if st.session_state.pop("review_waiting", None) == job["id"]:
        st.rerun(scope="app")


def _ago(at: float | None) -> str:
    if not at:
        return ""
    minutes = (time.time() - at) / 60
    return "just now" if minutes < 1 else f"{minutes:.0f} min ago" if minutes < 90 else f"{minutes / 60:.0f} h ago"


def label_errors(ws: Workspace, names: list[str]) -> None:
    """Likely label errors from the last review job, each with keep / change / another class / remove."""
    st.subheader("Likely label errors")
    noun, plural = item_words(ws)
    st.caption(f"Each labelled {noun} is predicted from your other labels and the {plural} around it, never its own "
               f"label. A label is listed only when another class is at least {FLAG_ODDS:.0f} times as likely; "
               f"when the {plural} cannot tell, the check says nothing. It takes seconds and runs in the background.")
    problem = label_problem(ws)
    busy = bool(ws.store.jobs(kind="review", statuses=ACTIVE_JOB_STATES, limit=1))
    st.button("Check my labels", key="review_start", icon=":material/fact_check:", disabled=bool(problem) or busy,
              on_click=_start_review, args=(ws,))
    if problem:
        st.caption(problem)
    st.fragment(run_every=1.0 if busy else None)(_review_status)(ws)  # polls only while a check runs
    msg = st.session_state.pop(MSG, None)
    if msg:
        st.success(msg)
    review = ws.store.get_setting(REVIEW_SETTING)
    if not review:
        st.caption("Your labels have not been checked yet.")
        return
    current = _labels(ws)
    kept = ws.store.get_setting(KEPT_SETTING) or {}
    rows = [r for r in review["rows"] if flagged(r) and current.get(r["item"]) == r["label"]
            and kept.get(str(r["item"])) != r["label"]]
    st.caption(f"Checked {count(review['n_labels'], 'label')} {_ago(review.get('at'))} with {review['embedding']}."
               + (" Labels changed since: check again to include them." if len(current) != review["n_labels"]
                  else ""))
    for note in review.get("notes", []):
        st.caption(note)
    if not rows:
        st.success(f"No likely label errors: no label is clearly contradicted by the {plural} most like it.")
        return
    st.markdown(f"**{count(len(rows), 'label')} may be wrong**"
                + (f" (showing the {SHOW} most likely)" if len(rows) > SHOW else "")
                + f". Look at each {noun}: keep the label when it is right.")
    items = {r["id"]: r for r in ws.store.items(ids=[r["item"] for r in rows[:SHOW]])}
    cols = st.columns(COLUMNS)
    for n, row in enumerate(rows[:SHOW]):
        item_id, label, suggested = row["item"], row["label"], row["suggested"]
        with cols[n % COLUMNS].container(border=True):
            _tile(ws, items.get(item_id))
            st.markdown(f"Labelled **{label}**; the {plural} most like it say **{suggested}**")
            st.caption(odds_text(row))
            # keep comes first and no button is primary: the check suggests, the person decides
            st.button(f"Keep {label}", key=f"rv_keep_{item_id}", width="stretch", on_click=_keep,
                      args=(ws, item_id, label))
            st.button(f"Change to {suggested}", key=f"rv_fix_{item_id}", width="stretch",
                      on_click=_relabel, args=(ws, item_id, suggested))
            _other_classes(ws, item_id, f"rv_other_{item_id}", names, (label, suggested))
            st.button("Remove label", key=f"rv_remove_{item_id}", width="stretch", on_click=_remove,
                      args=(ws, item_id))
            more_like_this_button(ws, item_id, key=f"rv_similar_{item_id}", width="stretch")


def _gallery(ws: Workspace, rows: list[dict[str, Any]], prefix: str, names: list[str],
             current: dict[int, str]) -> None:
    items = {r["id"]: r for r in ws.store.items(ids=[int(r["item_id"]) for r in rows])}
    cols = st.columns(COLUMNS)
    for n, row in enumerate(rows):
        item_id, predicted = int(row["item_id"]), row["class_name"]
        label = current.get(item_id)
        with cols[n % COLUMNS].container(border=True):
            _tile(ws, items.get(item_id))
            if label is not None:
                st.markdown(f"Labelled **{label}**, predicted **{predicted}**")
            else:
                st.markdown(f"Predicted **{predicted}**")
            st.caption(f"Confidence {100 * row['confidence']:.0f}%")
            st.button(f"{'Change' if label else 'Label'} as {predicted}", key=f"{prefix}_fix_{item_id}",
                      width="stretch", on_click=_relabel, args=(ws, item_id, predicted))  # a suggestion, not a default
            _other_classes(ws, item_id, f"{prefix}_other_{item_id}", names, (predicted,) + ((label,) if label else ()))
            more_like_this_button(ws, item_id, key=f"{prefix}_similar_{item_id}", width="stretch")


def classifier_doubts(ws: Workspace, run: dict[str, Any], names: list[str]) -> None:
    """Labelled items the run's classifier predicts as another class, and the least confident others."""
    predictions = ws.store.predictions(run["id"])
    if not predictions:
        return
    current = _labels(ws)
    disagree = sorted((p for p in predictions if int(p["item_id"]) in current
                       and current[int(p["item_id"])] != p["class_name"]), key=lambda p: -p["confidence"])
    unsure = sorted((p for p in predictions if int(p["item_id"]) not in current), key=lambda p: p["confidence"])
    st.subheader("Where the classifier disagrees or is unsure")
    plural = item_words(ws)[1]
    if disagree:
        st.markdown(f"**Labelled {plural} it predicts differently** ({len(disagree)}): it learned from these labels "
                    f"and still disagrees, so the label or the {item_words(ws)[0]} is often unusual.")
        _gallery(ws, disagree[:SHOW], "dis", names, current)
    else:
        st.caption("The classifier agrees with every label it was trained on.")
    if unsure:
        st.markdown(f"**{plural.capitalize()} it is least sure about** (lowest confidence of {len(unsure)} unlabelled): "
                    "labelling these teaches it the most.")
        _gallery(ws, unsure[:SHOW], "uns", names, current)
