"""How the newest pretraining run ended, and which embedding the app uses because of it.

Read from the store only (the newest pretrain job, its run, the run's kept encoder and the settings
`features.choice` and `features.pinned`), never from this browser session, so a reload mid-run or a
second tab shows the same ending. The encoder picker sits right under the verdict.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from sslapp.features.read import CHOICE_SETTING, PINNED_SETTING, describe, encoders, run_encoder
from sslapp.jobs.launcher import ensure_worker
from sslapp.modalities import workspace_modality
from sslapp.store.states import JobState
from sslapp.words import count
from sslapp.workspace import Workspace

PICKER_LABEL = "Encoder for the map, suggestions and classifier"
AUTOMATIC = 0  # the picker's "automatic" (no artifact has id 0; None would read as "nothing picked")
ENDED = (JobState.DONE, JobState.CANCELLED, JobState.FAILED)


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds} s"


def epochs_done(ws: Workspace, job: dict[str, Any], run: dict[str, Any] | None) -> int:
    """Whole epochs the run finished: its result when done, else its newest checkpoint's epoch."""
    if job["status"] == JobState.DONE and (job.get("result") or {}).get("epochs") is not None:
        return int(job["result"]["epochs"])
    ck = ws.store.latest_checkpoint(run_id=run["id"]) if run else None
    return int(ck["epoch"]) if ck else 0


def epochs_planned(job: dict[str, Any]) -> int | None:
    """The epoch count the run aimed at: the one asked for, or the one its minutes budget fixed."""
    params, progress = job.get("params") or {}, job.get("progress") or {}
    if params.get("epochs"):
        return int(params["epochs"])
    planned = (job.get("result") or {}).get("epochs_planned")
    if planned:
        return int(planned)
    return int(progress["epochs"]) if progress.get("epochs") and progress.get("epochs_fixed") else None


def ending(ws: Workspace, job: dict[str, Any], run: dict[str, Any] | None) -> str:
    """Done, cancelled or failed, in words, with how far it got."""
    status, result = job["status"], job.get("result") or {}
    done, planned = epochs_done(ws, job, run), epochs_planned(job)
    reached = f"{done} of {count(planned, 'epoch')}" if planned and done < planned else count(done, "epoch")
    if status == JobState.DONE:
        items = workspace_modality(ws).plural
        text = f"Done: {count(done, 'epoch')} at {result.get('images_per_s') or 0:.0f} {items}/s"
        text += f", in {duration(result['elapsed_s'])}." if result.get("elapsed_s") else "."
        if result.get("stopped") == "time budget reached" and planned and done < planned:
            text += f" The time limit ended it after {reached}."
        return text
    if status == JobState.CANCELLED:
        return (f"Cancelled after {reached}." if done else "Cancelled before its first epoch ended.") + \
            " Resume continues from where it stopped."
    return (f"Failed after {reached}" if done else "Failed before its first epoch ended") + \
        f": {job.get('error') or 'no reason was recorded'}"


def kept_line(ws: Workspace, run: dict[str, Any] | None, done: int) -> str:
    """Which of the run's encoders is kept, and what the health check and the app measured on it."""
    enc = run_encoder(ws, run["id"]) if run else None
    if enc is None:
        return "No encoder was kept: no epoch finished."
    meta = enc.get("meta") or {}
    probe, epoch = meta.get("probe") or {}, meta.get("epoch")
    parts = [f"Kept the encoder after epoch {epoch}" + (" (the best of the run; later epochs scored lower)"
                                                         if epoch is not None and epoch < done else "")]
    if probe.get("knn_acc") is not None:
        parts.append(f"nearest-neighbour accuracy {probe['knn_acc']:.0%} on your "
                     f"{count(int(probe.get('n_labelled') or 0), 'labelled ' + workspace_modality(ws).noun)}")
    if probe.get("std_ratio") is not None:
        parts.append(f"feature spread {probe['std_ratio']:.2f}" + (" (collapsed)" if probe.get("collapsed") else ""))
    choice = ws.store.get_setting(CHOICE_SETTING) or {}
    score = next((c.get("score") for c in choice.get("candidates", []) if c["encoder_artifact_id"] == enc["id"]), None)
    if score is not None:
        parts.append(f"{score:.0%} on your labels when the app compared the encoders")
    return "; ".join(parts) + "."


def verdict(ws: Workspace, run: dict[str, Any] | None) -> str:
    """Which embedding the app uses now, and why, said against this run's encoder (`features.choice`)."""
    choice, pinned = ws.store.get_setting(CHOICE_SETTING) or {}, ws.store.get_setting(PINNED_SETTING)
    ours = {a["id"] for a in ws.store.run_artifacts(run["id"], "encoder")} if run else set()
    if pinned is not None:
        art = next((a for a in encoders(ws) if a["id"] == pinned), None)
        name = describe(art) if art else "the encoder you chose"
        if pinned in ours:
            return f"The app now uses this encoder ({name}): you chose it."
        return (f"The app keeps using {name}, not this encoder: it is the encoder you chose. Pick "
                "*automatic* below to let the app choose by measurement, or pick this run's encoder.")
    if not choice:
        return ("The app keeps using the embedding it starts with for now: it chooses one when it next draws "
                f"the map or picks {workspace_modality(ws).plural} to label.")
    name, reason = choice.get("name", "an encoder"), choice.get("reason", "")
    if choice.get("encoder_artifact_id") in ours:
        return f"The app now uses this encoder ({name}): {reason}."
    if not ours:  # the run kept no encoder: nothing to compare
        return f"The app keeps using {name}: {reason}."
    if not any(c["encoder_artifact_id"] in ours for c in choice.get("candidates", [])):
        return (f"The app keeps using {name} for now: this encoder is compared with it the next time the "
                f"map is drawn or {workspace_modality(ws).plural} are picked to label. You can pick it below.")
    later = "" if choice.get("n_scored") else (" Once two classes have two labels each, the app measures which "
                                               "encoder fits your labels best, this one included.")
    return f"The app keeps using {name}, not this encoder: {reason}.{later}"


def _pin(ws: Workspace) -> None:
    """The picker's change, before the page is drawn again, so the verdict above it says the new state."""
    picked = st.session_state["pt_encoder_pick"] or None
    ws.store.set_setting(PINNED_SETTING, picked)
    ws.store.enqueue_job("embed", {"clusters": "kmeans", "k": None, "provisional": False})
    ensure_worker(ws)
    st.session_state["pt_encoder_picked"] = True  # said by the picker as it is drawn (no elements in callbacks)


def encoder_picker(ws: Workspace) -> None:
    """Pin an encoder, or leave the choice to measurement; a change redraws the map with it."""
    arts = encoders(ws)
    if not arts:
        return
    pinned = ws.store.get_setting(PINNED_SETTING)
    options = [AUTOMATIC] + [a["id"] for a in arts]
    names = {a["id"]: f"{describe(a)} (made {time.strftime('%d %b %H:%M', time.localtime(a['created_at']))})"
             for a in arts}
    names[AUTOMATIC] = "automatic: the best measured on your labels"
    if st.session_state.pop("pt_encoder_picked", False):
        st.toast("The map is being redrawn with the encoder you chose.")
    st.selectbox(PICKER_LABEL, options, index=options.index(pinned) if pinned in options else 0,
                 format_func=names.__getitem__, key="pt_encoder_pick", on_change=_pin, args=(ws,),
                 help="The score is the accuracy of graph-based learning, cross-validated on your first "
                      "labels of each class. Automatic keeps the current one unless another is better.")


def render_outcome(ws: Workspace, job: dict[str, Any], run: dict[str, Any] | None) -> None:
    """The ending of a finished run, what it kept, the verdict and the picker, in one place."""
    text = ending(ws, job, run)
    box = {JobState.DONE: st.success, JobState.CANCELLED: st.warning, JobState.FAILED: st.error}[job["status"]]
    icon = {JobState.DONE: ":material/check_circle:", JobState.CANCELLED: ":material/stop_circle:",
            JobState.FAILED: ":material/error:"}[job["status"]]
    box(text, icon=icon)
    with st.container(key="pretrain_verdict"):
        st.markdown(kept_line(ws, run, epochs_done(ws, job, run)))
        st.info(verdict(ws, run), icon=":material/insights:")
        encoder_picker(ws)
