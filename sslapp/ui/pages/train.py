"""The Train page: train a classifier on the labels (as a worker job) and show honest estimates.

The page only asks: it enqueues a "finetune" job and polls it with a fragment. Everything it
shows comes from the job's run summary: the cross-validated estimate with its spread and label
count, the confusion matrix and per-class figures from held-out predictions, prediction counts.
Below a trained classifier, `sslapp.ui.review` shows likely label errors (a "review" job) and the
items the classifier disagrees with or is least sure about, each one click from a corrected label.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from sslapp.modalities import workspace_modality
from sslapp.store.states import ACTIVE_JOB_STATES, STOPPED_JOB_STATES, JobState
from sslapp.ui import review
from sslapp.ui.common import (
    embedding_line,
    item_words,
    job_status_line,
    label_counts,
    labels_changed,
    require_workspace,
)
from sslapp.words import count
from sslapp.workspace import Workspace

ACTIVE = ACTIVE_JOB_STATES
MODE_HELP = {
    "auto": "Linear probe unless a GPU is present and every class has at least 20 labels.",
    "linear": "Logistic regression on the frozen embeddings: seconds, best with few labels.",
    "full": "Fine-tune the whole encoder with augmentation and early stopping: minutes, needs more labels.",
}
PROPAGATE_OPTIONS = {"auto": "auto (measured per workspace)", "on": "on (Poisson learning)", "off": "off"}


def _readiness(ws: Workspace, counts: dict[str, int]) -> tuple[bool, list[str], list[str]]:
    """(can_train, blocking problems, notices)."""
    problems, notices = [], []
    with_labels = {k: v for k, v in counts.items() if v > 0}
    if len(with_labels) < 2:
        problems.append(f"Label {item_words(ws)[1]} of at least 2 classes to train a classifier (now {len(with_labels)} "
                        f"class{'es' if len(with_labels) != 1 else ''} with labels). Use the Label page.")
    single = [k for k, v in with_labels.items() if v == 1]
    if single:
        notices.append("Only one label for " + ", ".join(f"**{k}**" for k in single) + ": the model learns "
                       "from it, but its accuracy cannot be estimated. Label a few more.")
    empty = [k for k, v in counts.items() if v == 0]
    if empty and len(with_labels) >= 2:
        notices.append("No labels yet for " + ", ".join(f"**{k}**" for k in empty) +
                       ": left out of the classifier.")
    return not problems, problems, notices


def _start(ws: Workspace, mode: str, propagate: str) -> int:
    from sslapp.jobs.launcher import ensure_worker

    job_id = ws.store.enqueue_job("finetune", {"mode": mode, "propagate": propagate})
    ensure_worker(ws)
    st.session_state["finetune_job"] = job_id
    return job_id


def _job_panel(ws: Workspace) -> None:
    """The running (or just finished) finetune job, polled while it runs."""
    active = ws.store.jobs(kind="finetune", statuses=ACTIVE, limit=5)
    job_id = st.session_state.get("finetune_job") or (active[-1]["id"] if active else None)
    if job_id is None:
        return
    job = ws.store.job(job_id)
    if job is None:
        return
    if job["status"] in ACTIVE:
        p = job.get("progress") or {}
        with st.container(border=True):
            st.markdown(job_status_line(job, item_words(ws)[1]))
            if p.get("steps"):
                st.progress(min(1.0, float(p.get("step", 0)) / max(1, float(p["steps"]))))
            elif p.get("epochs"):
                st.progress(min(1.0, float(p.get("epoch", 0)) / max(1, float(p["epochs"]))))
            if st.button("Cancel", key=f"cancel_{job_id}", icon=":material/stop_circle:"):
                ws.store.request_job_stop(job_id, "cancel")
        return
    if st.session_state.get("finetune_seen") != job_id:  # just finished: redraw the results once
        st.session_state["finetune_seen"] = job_id
        st.rerun(scope="app")
    if job["status"] == JobState.FAILED:
        st.error(f"Training failed: {job.get('error')}")
    elif job["status"] in STOPPED_JOB_STATES:
        st.warning(f"Training was {job['status']}; the previous classifier (if any) is unchanged.")


def _confusion_figure(summary: dict[str, Any]):
    import plotly.graph_objects as go

    names = summary["classes"]
    cm = summary["estimate"]["confusion"]
    fig = go.Figure(go.Heatmap(z=cm, x=names, y=names, colorscale="Blues", text=cm, texttemplate="%{text}",
                               customdata=[[count(int(n), "label") for n in row] for row in cm],
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata}<extra></extra>"))
    fig.update_layout(xaxis_title="predicted (held out)", yaxis_title="labelled as", yaxis_autorange="reversed",
                      height=120 + 40 * len(names), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def _results(ws: Workspace, counts: dict[str, int]) -> None:
    runs = ws.store.runs(kind="finetune", status="done", limit=1)
    if not runs:
        st.caption("No classifier trained yet.")
        return
    run = runs[0]
    summary = run["summary"] or {}
    est = summary.get("estimate") or {}
    trained = time.strftime("%d %b %H:%M", time.localtime(run["created_at"]))
    noun, plural = item_words(ws)
    mode = {"linear": "a linear probe", "full": "a full fine-tune"}.get(summary.get("mode"), summary.get("mode"))
    st.subheader(f"Classifier trained {trained} ({mode})")
    a, b, c = st.columns(3)
    if est.get("mean") is not None:
        a.metric("Estimated accuracy", f"{100 * est['mean']:.0f}%",
                 delta=f"95% interval {100 * est['low']:.0f}-{100 * est['high']:.0f}%", delta_color="off",
                 delta_arrow="off",
                 help="Class-balanced: the mean of the per-class accuracies, so a big, easy class cannot hide "
                      f"the small ones. Cross-validation on your labelled {plural}: each was predicted by a model "
                      "that did not see its label. The range is a 95% interval; this is not a test accuracy.")
        pooled = est.get("pooled")
        st.caption(f"{est['text']}. Cross-validation on the labelled {plural} only; not a test accuracy."
                   + (f" Plain accuracy over the same held-out labels: {100 * pooled:.0f}%." if pooled is not None
                      and round(100 * pooled) != round(100 * est["mean"]) else ""))
    else:
        a.metric("Estimated accuracy", "—")
        st.warning(est.get("text") or "No accuracy estimate: too few labels.")
    b.metric("Labels used", f"{est.get('n_labels', 0):,}")
    prop = summary.get("propagation") or {}
    c.metric("Pseudo-labels", f"{prop.get('pseudo_labels', 0):,}",
             help=f"Unlabelled {plural} used via {prop.get('method') or 'no propagation'}: {prop.get('reason', '')}")
    for w in summary.get("warnings") or []:
        st.warning(w)
    if labels_changed(summary.get("label_counts") or {}, counts):
        st.info("Labels changed since this classifier was trained: train again to use them.")
    st.markdown(embedding_line(ws, summary.get("encoder_artifact_id"), summary.get("features")))
    if est.get("confusion"):
        left, right = st.columns([3, 2])
        with left:
            st.markdown(f"**Confusion matrix** (held-out predictions of the labelled {plural})")
            st.plotly_chart(_confusion_figure(summary), key="confusion")
        with right:
            st.markdown("**Per class**")
            st.dataframe([{"class": r["class"], "labels": r["labels"], "tested": r["tested"],
                           "precision": round(r["precision"], 2), "recall": round(r["recall"], 2),
                           "note": "single label" if r["single_label"] else ""} for r in est["per_class"]],
                         hide_index=True, width="stretch", key="per_class")
    predicted = summary.get("predicted_counts") or {}
    if predicted:
        st.markdown(f"**Predictions for every {noun}** (colours on the Explore map)")
        st.dataframe([{"class": k, f"predicted {plural}": v} for k, v in predicted.items()], hide_index=True,
                     key="predicted_counts")
        if summary.get("mean_confidence") is not None:
            st.caption(f"Mean confidence {summary['mean_confidence']:.2f}. Features: {summary.get('features')}.")
    names = [c["name"] for c in ws.store.classes()]
    review.label_errors(ws, names)
    review.classifier_doubts(ws, run, names)


def render() -> None:
    st.title("Train")
    ws = require_workspace()
    counts = label_counts(ws)
    ready, problems, notices = _readiness(ws, counts)
    for p in problems:
        st.warning(p)
    for n in notices:
        st.info(n)
    st.markdown(embedding_line(ws))
    busy = bool(ws.store.jobs(kind="finetune", statuses=ACTIVE, limit=1))
    with st.container(border=True):
        left, right = st.columns(2)
        modes = list(MODE_HELP) if workspace_modality(ws).full_finetune else ["auto", "linear"]  # texts: a probe
        mode = left.radio("Mode", modes, horizontal=True, key="train_mode", captions=[MODE_HELP[m] for m in modes])
        propagate = right.selectbox(f"Use unlabelled {item_words(ws)[1]}", list(PROPAGATE_OPTIONS), key="train_propagate",
                                    format_func=PROPAGATE_OPTIONS.get,
                                    help="Poisson learning or label spreading over the kNN graph of the "
                                         "embeddings; 'auto' uses Poisson learning with few labels and lets "
                                         "cross-validation choose once every class has 3.")
        if st.button("Train", type="primary", icon=":material/school:", disabled=not ready or busy, key="train"):
            _start(ws, mode, propagate)
            st.rerun()
    panel = st.fragment(run_every=1.0 if busy else None)(_job_panel)  # polls only while a job runs
    panel(ws)
    _results(ws, counts)
