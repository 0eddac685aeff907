"""The Label page: one item at a time from a queue, one click or one key per label.

The item is drawn by `sslapp.ui.item_view`: an image beside its buttons, a text large and whole, a
sound as its spectrogram with a player that plays it as it comes up (its buttons beside it too, so the
keys and the flow are the same). Words follow the workspace's kind ("texts", not "images").

Keys (Streamlit's native button shortcuts, no extra component): 1-9 and 0 label the current item
with the first ten classes, then letters (shown on each button; `sslapp.ui.label_classes`), S skips,
U undoes this tab's last action and Shift+U redoes what it undid (`sslapp.ui.label_history`, which also
draws the workspace's newest label actions from the store, each undoable or redoable), A accepts the
classifier's guess when there is one ("Model says: cat (87%)": the same label a class key gives; with no
guess there is no button and A does nothing, and no class is ever picked in advance). For sounds, Space
plays the clip again from its start (`sslapp.ui.sound_view`: R and C are Streamlit's own keys, and the
class keys take every other letter). The class panel (`classes_panel`) is drawn under the buttons in
every state of the page.

The queue (`sslapp.ui.label_queue`) is one ordered list: what Undo took back, the open active-learning
suggestions, then our own picks; the page serves its head and shows the rest as "Up next", and asks
the worker for the next batch by itself when it runs short.
Every label is written to the database at once and the queue is read back on each run, so a
refresh loses nothing and two tabs never overwrite each other's work.

Each image's buttons carry the image's id in their keys, so a key pressed twice before the page is
redrawn acts on the image it was pressed on, never on the next one the user has not seen yet.
"""

from __future__ import annotations

import re

import streamlit as st

from sslapp.jobs.launcher import ensure_worker
from sslapp.select.registry import STRATEGIES
from sslapp.store.states import JobState
from sslapp.ui.common import (
    annotator_name,
    file_name,
    item_words,
    job_status_line,
    require_workspace,
)
from sslapp.ui.item_view import HOVER, md_escape, show_item, texts, view
from sslapp.ui.label_classes import button_help, button_label, class_key, classes_panel
from sslapp.ui.label_history import AGAIN, MSG, REDO, UNDO, history_panel, mine, record, redo, undo
from sslapp.ui.label_queue import DEFAULT_BUDGET, Entry, Queue, build_queue, queue_note, refill, waiting_job
from sslapp.ui.similar import OPEN_KEY as SIMILAR_OPEN
from sslapp.ui.similar import more_like_this_button
from sslapp.ui.sound_view import PLAYER_KEY, REPLAY_KEY, replay_key
from sslapp.words import count
from sslapp.workspace import Workspace

AUTO = "label_auto_suggest"

# Runs in the page (not in an iframe) each time a new image or class list is drawn: the page takes the
# keyboard, so the keys work at once (e.g. right after adding classes, the emptied box keeps the cursor),
# unless the user is typing text into a box.
FOCUS_JS = """<script>/* sslapp label focus NONCE */
(() => {
  const a = document.activeElement;
  const box = a && (a.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(a.tagName));
  const typing = box && (a.tagName === "TEXTAREA" || (a.tagName === "INPUT" && ["text", "search"].includes(a.type)
    && a.getAttribute("role") !== "combobox")) && String(a.value || "").trim();
  if (typing) return;
  if (box) a.blur();
  window.focus();
})();
</script>"""


def progress_line(classes: list[dict]) -> str:
    total = sum(c["n_labels"] for c in classes)
    few = sum(1 for c in classes if c["n_labels"] < 2)
    return f"{total} labelled · {count(len(classes), 'class')} · {few} with fewer than 2 labels"


def _gone(ws: Workspace, item_id: int) -> bool:
    """Whether a key press for `item_id` comes too late: the item is labelled or skipped by now.

    A press for an item this tab already handled is dropped without a word (two quick presses);
    one labelled elsewhere in the meantime says so.
    """
    noun = item_words(ws)[0]
    item = ws.store.item(item_id)
    if item is None:
        return True
    if item["label"] is None and item_id not in ws.store.skipped_ids():
        return False
    if item_id not in mine():
        st.session_state[MSG] = (f"#{item_id} was labelled '{item['label']}' elsewhere in the meantime; "
                                 f"kept that label. Here is the next {noun}." if item["label"] else
                                 f"#{item_id} was skipped elsewhere in the meantime. Here is the next {noun}.")
    return True


def _label(ws: Workspace, item_id: int, class_id: int, name: str) -> None:
    if _gone(ws, item_id):
        return
    try:
        ws.store.set_labels([item_id], class_id, source="user", action="label", annotator=annotator_name())
    except ValueError:  # its class was deleted (or merged away) in another tab since the button was drawn
        st.session_state[MSG] = f"The class {name} is gone in the meantime; #{item_id} is not labelled."
        return
    record("label", ws.store.last_action_id(), item_id)
    st.session_state[MSG] = f"#{item_id} → {name}"


def _skip(ws: Workspace, item_id: int) -> None:
    if _gone(ws, item_id):
        return
    ws.store.skip_items([item_id])
    record("skip", None, item_id)
    st.session_state[MSG] = f"#{item_id} skipped"


def _undo_redo(ws: Workspace, item_id: int | None) -> None:
    """Skip (when there is an item), Undo (U) and Redo (Shift+U), one row."""
    cols = st.columns(3 if item_id is not None else 2)
    if item_id is not None:
        cols[0].button("Skip", key=f"label_{item_id}_skip", shortcut="s", on_click=_skip, args=(ws, item_id),
                       width="stretch", wrap=True)
    cols[-2].button("Undo", key="label_undo", shortcut="u", on_click=undo, args=(ws,), width="stretch", wrap=True,
                    help="Undo this tab's last label or skip")
    cols[-1].button("Redo", key="label_redo", shortcut="shift+u", on_click=redo, args=(ws,), width="stretch",
                    wrap=True, disabled=not st.session_state.get(REDO), help="Redo what Undo took back last")


def _model_says(ws: Workspace, item_id: int) -> None:
    """The classifier's guess for the item with one key (A) to accept it; nothing without a guess."""
    guess = ws.store.prediction(item_id)
    if guess is None:
        return
    text, button = st.columns([3, 2], vertical_alignment="center")
    text.markdown(f"Model says: **{md_escape(guess['class_name'])}** ({guess['confidence']:.0%})")
    button.button("Accept", key=f"label_{item_id}_accept", shortcut="a", width="stretch", wrap=True,
                  help=f"Label as **{md_escape(guess['class_name'])}**, as its class key would",
                  on_click=_label, args=(ws, item_id, guess["class_id"], guess["class_name"]))


def _last_message() -> None:
    msg = st.session_state.get(MSG)  # kept until the next action: an extra rerun must not hide it
    if msg:
        st.caption(f"Last: {msg}")


def _current(ws: Workspace, entry: Entry, classes: list[dict]) -> None:
    item_id = entry.item_id
    item = ws.store.item(item_id)
    plural = item_words(ws)[1]
    left, right = st.columns([1, 2] if view(ws).tiles else [3, 2], gap="large")
    with left:
        if item and view(ws).plays:  # a sound plays as it comes up; Space plays it again (REPLAY_KEY)
            with st.container(key=PLAYER_KEY):
                show_item(ws, item, width=260, chars=None, large=True, autoplay=True)
            st.caption(f"{REPLAY_KEY} replays the clip")
        elif item:
            show_item(ws, item, width=260, chars=None, large=True)
        st.caption(f"#{item_id} · {file_name(item['source']) if item else ''}")
        st.caption(f"Why this one: {entry.reason}")
        more_like_this_button(ws, item_id, key=f"label_{item_id}_similar",
                              help=f"Its nearest neighbours: label many alike {plural} at once (M)", shortcut="m",
                              wrap=True)
    with right:
        if not classes:
            st.info("Create your classes in the panel below (for example 'cat, dog, bird'), then label with 1-9, "
                    "0 and the letters shown on the buttons.")
        cols = st.columns(3 if len(classes) <= 9 else 5)
        for i, c in enumerate(classes):
            # wrap: a button placed in a column would cut its text with an ellipsis ("3 · autom...")
            cols[i % len(cols)].button(button_label(i, c["name"]), key=f"label_{item_id}_class_{c['id']}",
                                       help=button_help(i, c["name"]), shortcut=class_key(i), width="stretch",
                                       wrap=True, on_click=_label, args=(ws, item_id, c["id"], c["name"]))
        # what comes and goes from item to item in one block, so the class panel below keeps its place
        # on the page and stays open while the user labels on
        with st.container():
            _model_says(ws, item_id)
            _undo_redo(ws, item_id)
            _last_message()
            history_panel(ws)
        classes_panel(ws, classes)


def _upcoming(ws: Workspace, entries: list[Entry]) -> None:
    """The queue after the current item, in the order it will be served: thumbnails (or spectrograms) six
    to a row, texts one to a line (their start)."""
    if not entries:
        return
    st.markdown("**Up next**, in this order")
    items = {r["id"]: r for r in ws.store.items(ids=[e.item_id for e in entries])}
    tiles = view(ws).tiles
    words = {} if tiles else texts(ws, items.values(), HOVER + 1)
    for n, entry in enumerate(e for e in entries if e.item_id in items):
        item = items[entry.item_id]
        if not tiles:
            number, body = st.columns([1, 14], vertical_alignment="top")
            number.caption(f"#{entry.item_id}", help=entry.reason)
            with body:
                show_item(ws, item, chars=HOVER, text=words.get(entry.item_id))
            continue
        if n % 6 == 0:  # one row of six at a time: read left to right, top to bottom
            cols = st.columns(6)
        with cols[n % 6]:
            show_item(ws, item)
            st.caption(f"#{entry.item_id}", help=entry.reason)  # short: narrow columns break long words


def _suggest_panel(ws: Workspace, queue: Queue, busy: bool) -> None:
    """Ask the worker for the next items to label (active learning), and say how it went."""
    plural = item_words(ws)[1]
    with st.expander(f"Suggest the next {plural} (active learning)", expanded=not queue.open_suggestions and not busy):
        c1, c2, c3 = st.columns([1, 2, 1], vertical_alignment="bottom")
        budget = c1.number_input("How many", min_value=1, max_value=1000, value=DEFAULT_BUDGET,
                                 key="label_suggest_budget")
        strategy = c2.selectbox("Strategy", sorted(STRATEGIES, key=lambda s: s != "auto"), key="label_suggest_strategy",
                                help="auto: typical, covering picks while labels are few; then uncertain "
                                     "and diverse ones.")
        if c3.button("Suggest", key="label_suggest", type="primary", wrap=True):
            ws.store.enqueue_job("suggest", {"budget": int(budget), "strategy": strategy,
                                             "unlabelled": queue.unlabelled})
            ensure_worker(ws)
            busy = True
        st.checkbox("Keep suggesting: ask for the next batch by itself when fewer than 5 are left", value=True,
                    key=AUTO)
        st.fragment(run_every=1.0 if busy else None)(_suggest_status)(ws, busy)  # polls only while a job runs


def _suggest_status(ws: Workspace, polling: bool) -> None:
    jobs = ws.store.jobs(kind="suggest", limit=1)
    if not jobs:
        return
    job = jobs[0]
    if polling and waiting_job(ws) is None:  # the test the full run makes, so the rerun cannot poll again
        st.session_state.pop("label_suggest_waiting", None)
        st.rerun()  # the job ended: one full run shows its suggestions and stops this polling
    if job["status"] in (JobState.QUEUED, JobState.RUNNING):
        st.caption(job_status_line(job, item_words(ws)[1]))
        st.session_state["label_suggest_waiting"] = job["id"]
    elif job["status"] == JobState.FAILED:
        st.error(f"Suggestions failed: {job['error']}")
    elif job["status"] == JobState.DONE:
        for note in (job.get("result") or {}).get("notes", []):
            st.info(note)
        if st.session_state.pop("label_suggest_waiting", None) == job["id"]:
            st.rerun()  # the queue above is now the new suggestions


def _similar_open_for() -> int | None:
    """The item whose More like this dialog is open on this page: it stays the current item."""
    match = re.fullmatch(r"label_(\d+)_similar", str(st.session_state.get(SIMILAR_OPEN) or ""))
    return int(match.group(1)) if match else None


def _take_focus(nonce: str) -> None:
    st.html(FOCUS_JS.replace("NONCE", re.sub(r"[^\w:-]", "", nonce)), unsafe_allow_javascript=True)


def render() -> None:
    st.title("Label")
    ws = require_workspace()
    classes = ws.store.classes()
    st.markdown(progress_line(classes))
    noun, plural = item_words(ws)
    if ws.store.count_items() == 0:
        st.info(f"No {plural} yet. Add {plural} on the Data page first; your classes can be made now.")
        classes_panel(ws, classes)
        return
    queue = build_queue(ws, first=st.session_state.get(AGAIN, []), keep=_similar_open_for())
    if st.session_state.get(AUTO, True) and refill(ws, queue) is not None:
        ensure_worker(ws)
    job = waiting_job(ws)
    if not queue.entries:
        st.success(f"Every {noun} is labelled or skipped. Train a classifier on the Train page, or ask for "
                   "new suggestions.")
        with st.container():
            _undo_redo(ws, None)
            _last_message()
            history_panel(ws)
        classes_panel(ws, classes)
    else:
        note = queue_note(queue, job, (job or {}).get("params", {}).get("budget"), plural)
        if note:
            st.caption(note)
        _current(ws, queue.entries[0], classes)
        _upcoming(ws, queue.entries[1:])
        if view(ws).plays:
            replay_key()
    _suggest_panel(ws, queue, busy=job is not None)
    head = queue.entries[0].item_id if queue.entries else 0
    _take_focus(f"{head}:{len(classes)}:{len(st.session_state.get(UNDO, []))}:{len(st.session_state.get(REDO, []))}")
