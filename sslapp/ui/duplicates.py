"""The Data page's near-duplicates section: copies that were resized, recompressed or slightly cropped
(texts: the same text with small edits).

"Find near-duplicates" asks the worker for a "near_duplicates" job (`sslapp.curate.duplicates_job`,
which may compute features and so imports torch there, never here); a fragment polls it while it
runs. The groups come from the setting it writes (`duplicates.groups`), one row of thumbnails each
with two buttons:
- "Keep one": `sslapp.curate.duplicates.keep_one` keeps one image (a labelled one, else the first
  added) and skips the others: they leave the labelling queue and the suggestions, nothing is
  deleted, and "Bring them back" (or labelling one) undoes it.
- "Keep all": these are not copies to drop; the group's ids join the setting `duplicates.kept_all`
  and it is not shown again (a later search that finds a new copy of them shows the group again).
A group is drawn with its items that are still active and not skipped (thumbnails in a row, texts one
to a line, by `sslapp.ui.item_view`), and only while at least two
are, so a group dealt with by "Keep one" (here or from `sslapp near-duplicates --keep-one`) is gone.
Captions show file names only, never folder paths.

Stable keys: `dup_find`, and per group (named by its first shown item id) `dup_one_<id>`, `dup_all_<id>`;
`dup_back` brings back the images the last "Keep one" skipped.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from sslapp.curate.read import GROUPS_SETTING, KEPT_ALL_SETTING
from sslapp.modalities import workspace_modality
from sslapp.store.states import ACTIVE_JOB_STATES, JobState
from sslapp.ui.common import STATUS_WORDS, count_of, file_name, item_words
from sslapp.ui.item_view import show_item, texts, view
from sslapp.words import count
from sslapp.workspace import Workspace

KIND = "near_duplicates"
SHOW = 20  # groups drawn at once; more appear as these are dealt with
THUMBS = 12  # thumbnails drawn per group
THUMB_PX = 96
MSG = "dup_msg"
BACK = "dup_skipped"  # ids the last "Keep one" skipped, for "Bring them back"
WAITING = "dup_waiting"
ERROR = "dup_error"
TRUSTED = ("user", "imported")  # the label sources `keep_one` prefers to keep
_MD = re.compile(r"([\\`*_\[\]<>$~|])")
# how near-duplicates differ, by how the workspace's items are previewed (`Modality.preview`)
CHANGES = {"thumbnail": "that were resized, recompressed or slightly cropped",
           "text": "with a few words changed, added or fixed",
           "audio": "that were re-encoded, resampled or made a little louder or softer"}


def _md(text: str) -> str:
    return _MD.sub(r"\\\1", text)


def _names(names: list[str], most: int = 6) -> str:
    shown = ", ".join(f"**{_md(n)}**" for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


# -- actions (button callbacks: they run before the page is drawn again) ------------------------------
def _start(ws: Workspace) -> None:
    from sslapp.jobs.launcher import ensure_worker

    ws.store.enqueue_job(KIND, {})
    ensure_worker(ws)
    st.session_state.pop(MSG, None)
    st.session_state.pop(BACK, None)


def _keep_one(ws: Workspace, ids: list[int]) -> None:
    from sslapp.curate.read import keep_one

    done = keep_one(ws, ids)
    names = {r["id"]: file_name(r["source"]) for r in ws.store.items(ids=ids)}
    noun, plural = item_words(ws)
    skipped = [names.get(i, f"a {noun}") for i in done["skipped"]]
    st.session_state[MSG] = (f"Kept **{_md(names.get(done['kept'], f'one {noun}'))}** and skipped {_names(skipped)}. "
                             f"Skipped {plural} stay in the workspace, out of the labelling queue and the suggestions; "
                             "bring them back here, or label one to bring it back.")
    st.session_state[BACK] = done["skipped"]


def _keep_all(ws: Workspace, ids: list[int]) -> None:
    kept = list(ws.store.get_setting(KEPT_ALL_SETTING) or [])
    kept.append(sorted(int(i) for i in ids))
    ws.store.set_setting(KEPT_ALL_SETTING, kept)
    names = [file_name(r["source"]) for r in ws.store.items(ids=ids)]
    st.session_state[MSG] = f"Kept all {len(ids)}: {_names(names)}. This group will not be shown again."
    st.session_state.pop(BACK, None)


def _bring_back(ws: Workspace, ids: list[int]) -> None:
    ws.store.unskip_items(ids)
    st.session_state.pop(BACK, None)
    st.session_state[MSG] = f"Brought back {count_of(len(ids), item_words(ws))} into the labelling queue."


# -- reading -------------------------------------------------------------------------------------------
def open_groups(ws: Workspace, result: dict[str, Any], rows_for: int = SHOW) -> tuple[int, list[list[dict[str, Any]]]]:
    """(how many of the result's groups are still to deal with, the first `rows_for` of them as item rows):
    a group's active, not skipped items, when at least two are left and the user did not keep them all.
    Only the groups drawn read their rows: 100,000 cifar10 variants gave 16,800 items in groups, whose
    rows took 0.6 s of every Data page run."""
    groups = result.get("groups") or []
    active = ws.store.active_ids([i for g in groups for i in g["items"]])
    skipped = ws.store.skipped_ids()
    dismissed = [set(d) for d in ws.store.get_setting(KEPT_ALL_SETTING) or []]
    open_ids = []
    for g in groups:
        ids = [int(i) for i in g["items"] if int(i) in active and int(i) not in skipped]
        if len(ids) >= 2 and not any(set(ids) <= d for d in dismissed):
            open_ids.append(ids)
    shown = open_ids[:rows_for]
    rows = {r["id"]: r for r in ws.store.items(ids=[i for ids in shown for i in ids])}
    return len(open_ids), [[rows[i] for i in ids if i in rows] for ids in shown]


def _added_since(ws: Workspace, result: dict[str, Any]) -> bool:
    n = ws.store.count_items()
    newest = ws.store.items(limit=1, offset=n - 1) if n else []
    return bool(newest) and int(newest[0]["id"]) > int(result.get("last_item", 0))


def _kept_by_keep_one(group: list[dict[str, Any]]) -> dict[str, Any]:
    """The image `keep_one` keeps: the first labelled by a person (or imported), else the first added."""
    labelled = [r for r in group if r.get("label_source") in TRUSTED]
    return min(labelled or group, key=lambda r: r["id"])


# -- drawing -------------------------------------------------------------------------------------------
def _status(ws: Workspace) -> None:
    """The newest search while it runs (polled); redraws the page once when it ends."""
    jobs = ws.store.jobs(kind=KIND, limit=1)
    if not jobs:
        return
    job = jobs[0]
    if job["status"] in ACTIVE_JOB_STATES:
        message = (job.get("progress") or {}).get("message")
        st.info(f"Looking for near-duplicates ({STATUS_WORDS.get(job['status'], job['status'])})"
                + (f": {message}" if message else ""), icon=":material/hourglass_top:")
        st.session_state[WAITING] = job["id"]
        return
    if st.session_state.pop(WAITING, None) != job["id"]:
        return
    if job["status"] == JobState.FAILED:
        st.session_state[ERROR] = f"Looking for near-duplicates failed: {job.get('error')}. Nothing changed; try again."
    elif job["status"] != JobState.DONE:
        st.session_state[ERROR] = f"Looking for near-duplicates was {STATUS_WORDS.get(job['status'], job['status'])}."
    st.rerun(scope="app")  # draw the new groups (or the error), and enable the button again


def _group(ws: Workspace, group: list[dict[str, Any]]) -> None:
    ids = [int(r["id"]) for r in group]
    kept = _kept_by_keep_one(group)
    tiles = view(ws).tiles
    words = {} if tiles else texts(ws, group[:THUMBS], 1001)
    with st.container(border=True):
        with st.container(gap="small", **({"horizontal": True, "wrap": True} if tiles else {})):
            for row in group[:THUMBS]:
                with st.container(width=THUMB_PX + 8 if tiles else "stretch", gap=None):
                    show_item(ws, row, width=THUMB_PX, text=words.get(row["id"]))
                    st.caption(_md(file_name(row["source"])) + (f" · {_md(row['label'])}" if row.get("label") else ""))
        if len(group) > THUMBS:
            st.caption(f"and {len(group) - THUMBS} more like these")
        bar = st.container(horizontal=True, vertical_alignment="center", gap="small")
        bar.button("Keep one", key=f"dup_one_{ids[0]}", type="primary", on_click=_keep_one, args=(ws, ids),
                   help=f"Keep {file_name(kept['source'])} and skip the other {len(ids) - 1} (nothing is deleted)")
        bar.button("Keep all", key=f"dup_all_{ids[0]}", on_click=_keep_all, args=(ws, ids),
                   help="They are not copies to drop: keep every one and stop showing this group")
        bar.caption(f"{count_of(len(ids), item_words(ws))} · Keep one keeps **{_md(file_name(kept['source']))}**"
                    + (" (labelled)" if kept.get("label_source") in TRUSTED else " (added first)"))


def near_duplicates(ws: Workspace) -> None:
    """The section: the button, the running search, then the groups still to deal with."""
    st.subheader("Near-duplicates")
    noun, plural = item_words(ws)
    changes = CHANGES.get(workspace_modality(ws).preview, "with small changes")
    st.caption(f"Copies of one {noun} {changes} (exact copies are already dropped when {plural} are added). "
               "Keep one per group so copies do not count twice.")
    busy = bool(ws.store.jobs(kind=KIND, statuses=ACTIVE_JOB_STATES, limit=1))
    st.button("Find near-duplicates", key="dup_find", icon=":material/content_copy:", disabled=busy,
              on_click=_start, args=(ws,))
    st.fragment(run_every=1.0 if busy else None)(_status)(ws)  # polls only while a search runs
    error = st.session_state.pop(ERROR, None)
    if error:
        st.error(error)
    msg = st.session_state.pop(MSG, None)
    if msg:
        st.success(msg)
    back = st.session_state.get(BACK)
    if back:
        st.button(f"Bring them back ({len(back)})", key="dup_back", icon=":material/undo:",
                  on_click=_bring_back, args=(ws, back))
    result = ws.store.get_setting(GROUPS_SETTING)
    if not result:
        if not busy:
            st.caption("Not looked for yet. The search runs in the background and takes seconds for a few "
                       f"thousand {plural}.")
        return
    if _added_since(ws, result):
        st.info(f"{plural.capitalize()} were added since this search; find again to include them.", icon=":material/info:")
    n_open, groups = open_groups(ws, result)
    found = len(result.get("groups") or [])
    looked = count_of(int(result.get("n_items") or 0), item_words(ws))
    if not found:
        st.success(f"No near-duplicates found among {looked}.")
        return
    if not n_open:
        st.success(f"All {count(found, 'group')} of near-duplicates found among {looked} "
                   "are dealt with.")
        return
    st.markdown(f"**{count(n_open, 'group')} to look at** (found among {looked}"
                + (f"; showing the first {SHOW}" if n_open > SHOW else "") + ")")
    for group in groups:
        _group(ws, group)
