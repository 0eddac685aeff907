"""The Pretrain page: start self-supervised pretraining in the worker and watch it live.

The page only asks: Start enqueues a `pretrain` job and makes sure a worker runs; a fragment polls
the job (status, loss curve, img/s, ETA, the representation probe) and offers Cancel, Pause and
Resume. A job whose worker died (killed, machine restarted) shows as interrupted and resumes from
its last checkpoint. The newest run's card stays after it ends: how it ended, what it kept and which
embedding the app uses because of it, with the encoder picker (`sslapp.ui.pretrain_outcome`); all of
it read from the store, so a reload or another tab shows the same. A text workspace also takes a local
model folder as one more embedding (`sslapp.ui.local_model`). Nothing here trains.
"""

from __future__ import annotations

import math
import time

import streamlit as st

from sslapp import catalogue
from sslapp.jobs.launcher import ensure_worker, reap_dead_jobs
from sslapp.modalities import pretrain_refusal, workspace_modality
from sslapp.store.states import ACTIVE_JOB_STATES, HELD_JOB_STATES, RESUMABLE_JOB_STATES, JobState
from sslapp.ui.common import STATUS_WORDS, embedding_line, require_workspace
from sslapp.ui.local_model import local_model_form
from sslapp.ui.pretrain_outcome import ENDED, encoder_picker, render_outcome
from sslapp.words import count
from sslapp.workspace import Workspace

ACTIVE = ACTIVE_JOB_STATES
RESUMABLE = RESUMABLE_JOB_STATES
_INIT_LABELS = {"auto": "auto", "imagenet": "ImageNet weights", "scratch": "from scratch", "minilm": "MiniLM (shipped)",
                "patches": "from scratch, first layer from patches"}
_STATUS_WORDS = STATUS_WORDS


def _fmt_eta(seconds) -> str:
    if seconds is None or not isinstance(seconds, int | float) or math.isnan(seconds):
        return "—"
    seconds = int(seconds)
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m {seconds % 60:02d}s"


def _current_job(ws: Workspace) -> dict | None:
    """The newest pretrain job, whatever its state: its card shows it running, held or how it ended."""
    jobs = ws.store.jobs(kind="pretrain", limit=1)
    return jobs[0] if jobs else None


def _progress_line(p: dict) -> None:
    """'epoch N of M': M is fixed from the start (epochs) or after the first epoch (minutes); until
    then it is marked as a guess."""
    epochs = p.get("epochs")
    step = f"step {p.get('step', 0)} of {p.get('steps', '?')}"
    if epochs:
        done = min(1.0, max(0.0, ((p["epoch"] - 1) + (p.get("step", 0) / max(p.get("steps") or 1, 1))) / epochs))
        of = f"of about {epochs}" if p.get("epochs_fixed") is False else f"of {epochs}"
        st.progress(done, text=f"epoch {p['epoch']} {of} · {step}")
    else:
        st.caption(f"epoch {p['epoch']} · {step} · the number of epochs that fit in the time is known soon")


def _simple_form(ws: Workspace, disabled: bool) -> None:
    """Start a text or sound run: the method, its length, and batch and seed under Advanced (texts have no
    backbone or image size to pick: SimCSE tunes the shipped MiniLM, Word2Vec learns word vectors from
    scratch; sounds train the network the device calls for, as `auto` picks it for images)."""
    modality = workspace_modality(ws)
    with st.form("pretrain_start", border=True, enter_to_submit=False):
        st.subheader("Start pretraining")
        c1, c4, c5 = st.columns(3)
        method = c1.selectbox("Method", list(modality.ssl_methods), index=0, key="pt_method",
                              format_func=lambda m: catalogue.METHODS.get(m, m))
        length = c4.radio("Train for", ["minutes", "epochs"], horizontal=True, key="pt_length")
        amount = c5.number_input("How many", min_value=1, max_value=100_000, value=10, step=1, key="pt_amount")
        with st.expander("Advanced"):
            a1, a3 = st.columns(2)
            batch = a1.number_input(f"{modality.plural.capitalize()} per step (0 = the method's)", min_value=0,
                                    max_value=8192, value=0, step=16, key="pt_batch")
            seed = a3.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, key="pt_seed")
        submitted = st.form_submit_button("Start", type="primary", disabled=disabled, icon=":material/play_arrow:")
    if submitted:
        params = {"method": method, "seed": int(seed), length: int(amount) if length == "epochs" else float(amount)}
        if batch:
            params["batch_size"] = int(batch)
        ws.store.enqueue_job("pretrain", params)
        ensure_worker(ws)
        st.rerun()


def _start_form(ws: Workspace, disabled: bool) -> None:
    if workspace_modality(ws).name != "image":
        _simple_form(ws, disabled)
        return
    with st.form("pretrain_start", border=True, enter_to_submit=False):  # Enter in "How many" must not start a run
        st.subheader("Start pretraining")
        methods = catalogue.method_names("image")
        c1, c2, c3 = st.columns(3)
        method = c1.selectbox("Method", methods, index=methods.index("simclr"),
                              format_func=lambda m: catalogue.METHODS.get(m, m), key="pt_method")
        backbone = c2.selectbox("Backbone", catalogue.backbone_names(), index=0, key="pt_backbone",
                                help="auto picks by device and image size (see docs/benchmarks.md): on a CPU "
                                "a standard-stem ResNet-18 at 32 px, on a GPU a small-stem ResNet-18.")
        device = c3.selectbox("Device", ["auto", "cpu", "cuda"], key="pt_device")
        c6, c4, c5 = st.columns(3)
        init = c6.selectbox("Start from", catalogue.init_names(), index=0, key="pt_init",
                            format_func=lambda i: _INIT_LABELS.get(i, i),
                            help=f"ImageNet weights exist for {', '.join(catalogue.IMAGENET_BACKBONES)} only; "
                            "auto uses them where the backbone has them and starts from scratch otherwise.")
        length = c4.radio("Train for", ["minutes", "epochs"], horizontal=True, key="pt_length")
        amount = c5.number_input("How many", min_value=1, max_value=100_000, value=10, step=1, key="pt_amount")
        with st.expander("Advanced"):
            a1, a2, a3 = st.columns(3)
            batch = a1.number_input("Batch size (0 = auto)", min_value=0, max_value=8192, value=0, step=32,
                                    key="pt_batch")
            size = a2.number_input("Train size px (0 = auto)", min_value=0, max_value=512, value=0, step=8,
                                   key="pt_size")
            seed = a3.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, key="pt_seed")
            compile_ = st.checkbox("torch.compile the backbone (CUDA; slower start, faster steps)", key="pt_compile")
        submitted = st.form_submit_button("Start", type="primary", disabled=disabled,
                                          icon=":material/play_arrow:")
    if submitted:
        problem = catalogue.init_problem(backbone, init)
        if problem:
            st.error(f"Cannot start: {problem}.", icon=":material/error:")
            return
        params = {"method": method, "backbone": backbone, "init": init, "device": device, "seed": int(seed),
                  "compile": bool(compile_), length: int(amount) if length == "epochs" else float(amount)}
        if batch:
            params["batch_size"] = int(batch)
        if size:
            params["train_size"] = int(size)
        ws.store.enqueue_job("pretrain", params)
        ensure_worker(ws)
        st.rerun()


def _loss_chart(ws: Workspace, run_id: int) -> None:
    import plotly.graph_objects as go

    rows = ws.store.metrics(run_id, "loss")
    if not rows:
        st.caption("The loss curve appears after the first steps.")
        return
    fig = go.Figure(go.Scatter(x=[r["step"] for r in rows], y=[r["value"] for r in rows], mode="lines",
                               name="loss"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), title="Training loss",
                      xaxis_title="step", yaxis_title="loss")
    st.plotly_chart(fig, key=f"loss_{run_id}")


def _probe(ws: Workspace, run_id: int) -> None:
    stds = ws.store.metrics(run_id, "probe_std_ratio")
    if not stds:
        st.caption("The representation probe runs at the end of each epoch.")
        return
    knn = ws.store.metrics(run_id, "probe_knn_acc")
    collapsed = ws.store.metrics(run_id, "probe_collapsed")
    raw = ws.store.metrics(run_id, "probe_std")
    modality = workspace_modality(ws)
    noun, items = modality.noun, modality.plural
    c1, c2 = st.columns(2)
    c1.metric("Feature spread (1 = even, 0 = collapsed)", f"{stds[-1]['value']:.2f}",
              delta=f"{stds[-1]['value'] - stds[-2]['value']:+.2f}" if len(stds) > 1 else None,
              help=f"How evenly the {items}' features spread over the feature space after each epoch. Near 0 "
                   f"means every {noun} looks the same to the encoder (a collapse)."
                   + (f" Raw per-dimension spread {raw[-1]['value']:.4f}." if raw else ""))
    if knn:
        c2.metric("Nearest-neighbour accuracy on your labels", f"{knn[-1]['value']:.0%}",
                  delta=f"{knn[-1]['value'] - knn[-2]['value']:+.0%}" if len(knn) > 1 else None,
                  help=f"How often a {noun}'s 20 most similar labelled {items} (by these features) share its "
                       f"label, each epoch; 5-fold, so no {noun} votes for itself.")
    else:
        c2.caption(f"Label a few {items} per class to see, each epoch, how well these features tell your "
                   "classes apart.")
    if collapsed and collapsed[-1]["value"] > 0:
        st.warning(f"The representation has collapsed: all {items} map to nearly the same point, so the features "
                   "are useless. Cancel and try a lower learning rate, a larger batch or another method "
                   f"({catalogue.METHODS[modality.ssl_methods[0]].split(' — ')[0]} is the most robust).",
                   icon=":material/warning:")


def _job_panel(ws: Workspace) -> dict | None:
    """The newest run's card; returns the job it shows (the rest of the page follows the same state)."""
    reap_dead_jobs(ws)
    job = _current_job(ws)
    if job is None:
        return None
    status, p = job["status"], job.get("progress") or {}
    seen = st.session_state.get("pretrain_seen_status", {})
    if seen.get(job["id"]) in ACTIVE and status not in ACTIVE:  # it just stopped: refresh the whole page once
        st.session_state["pretrain_seen_status"] = {job["id"]: status}
        st.rerun(scope="app")
    st.session_state["pretrain_seen_status"] = {job["id"]: status}
    run = ws.store.run_for_job(job["id"])
    params = {**(job.get("params") or {}), **((run or {}).get("params") or {})}  # the run's: auto resolved
    with st.container(border=True, key="pretrain_card"):
        method = catalogue.METHODS.get(params.get("method", "simclr"), params.get("method", "simclr")).split(" — ")[0]
        started = time.strftime("%d %b %H:%M", time.localtime(job["created_at"])) if job.get("created_at") else ""
        st.subheader(f"{method} · {params.get('backbone', 'auto')} backbone · {_STATUS_WORDS.get(status, status)}",
                     help=f"started {started}" if started else None)
        if status in ENDED:
            render_outcome(ws, job, run)
        elif p.get("epoch") is not None:
            _progress_line(p)
        elif status == JobState.QUEUED:
            st.caption("Waiting for the worker to pick it up…")
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Loss", f"{p['loss']:.4f}" if isinstance(p.get("loss"), int | float) else "—")
        result = job.get("result") or {}
        ips = result.get("images_per_s") if status == JobState.DONE else p.get("images_per_s")
        plural = workspace_modality(ws).plural
        c2.metric(f"{plural.capitalize()} / s (average)", f"{ips:.0f}" if ips else "—",
                  help=f"Training {plural} per second since the first step, the same figure the summary reports.")
        c3.metric("ETA", _fmt_eta(p.get("eta_s")) if status in ACTIVE else "—")
        c4.metric("Batch", p.get("batch_size", "—"))
        if p.get("message") and status not in ENDED:
            st.caption(p["message"])
        if status == JobState.INTERRUPTED:
            st.warning("The worker stopped while running this job (killed or crashed). Resume continues from its "
                       "last checkpoint.", icon=":material/restart_alt:")
        elif status == JobState.PAUSED:
            st.info("Paused. Resume continues from where it stopped.", icon=":material/pause_circle:")
        b1, b2, b3, _ = st.columns([1, 1, 1, 3])
        if status in (JobState.QUEUED, JobState.RUNNING, JobState.PAUSING):
            if b1.button("Cancel", key=f"cancel_{job['id']}", icon=":material/stop:"):
                ws.store.request_job_stop(job["id"], "cancel")
                st.rerun(scope="fragment")
            if status == JobState.RUNNING and b2.button("Pause", key=f"pause_{job['id']}", icon=":material/pause:"):
                ws.store.request_job_stop(job["id"], "pause")
                st.rerun(scope="fragment")
        if status in RESUMABLE:
            if b1.button("Resume", key=f"resume_{job['id']}", type="primary", icon=":material/play_arrow:"):
                if ws.store.resume_job(job["id"]):
                    ensure_worker(ws)
                st.rerun(scope="app")
            if status in HELD_JOB_STATES and b2.button("Discard", key=f"discard_{job['id']}"):
                ws.store.request_job_stop(job["id"], "cancel")
                st.rerun(scope="app")
        if run is not None:
            left, right = st.columns([3, 2])
            with left:
                _loss_chart(ws, run["id"])
            with right:
                _probe(ws, run["id"])
    return job


def _past_runs(ws: Workspace) -> None:
    runs = ws.store.runs(kind="pretrain", limit=50)
    if not runs:
        return
    st.subheader("Past runs")
    plural = workspace_modality(ws).plural
    rows = []
    for r in runs:
        s, prm = r.get("summary") or {}, r.get("params") or {}
        probe = s.get("probe") or {}
        knn = probe.get("knn_acc")
        rows.append({"started": time.strftime("%d %b %H:%M", time.localtime(r["created_at"])),
                     "status": _STATUS_WORDS.get(r["status"], r["status"]),
                     "method": catalogue.METHODS.get(s.get("method", prm.get("method")),
                                                     str(prm.get("method"))).split(" — ")[0],
                     "backbone": s.get("backbone", prm.get("backbone")),
                     "start from": _INIT_LABELS.get(prm.get("init", "auto"), prm.get("init")),
                     "epochs": s.get("epochs"),
                     f"{plural} / s": round(s["images_per_s"]) if s.get("images_per_s") else None,
                     "neighbour accuracy": f"{knn:.0%}" if knn is not None else "— (no labels)",
                     "feature spread": round(probe["std_ratio"], 2) if probe.get("std_ratio") is not None else None,
                     "note": s.get("error") or s.get("stopped") or ""})
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={"note": st.column_config.TextColumn(width="large")})


def _encoders(ws: Workspace, picker: bool) -> None:
    """Every encoder the workspace keeps, with its measured score, and which one the app uses: a new
    run never silently replaces a better one; the user may pin any (`picker`: unless the newest run's
    card already offers the picker under its verdict)."""
    from sslapp.features.read import CHOICE_SETTING, describe, encoders

    arts = encoders(ws)
    if not arts:
        return
    choice = ws.store.get_setting(CHOICE_SETTING) or {}
    scores = {c["encoder_artifact_id"]: c.get("score") for c in choice.get("candidates", [])}
    st.subheader("Encoders")
    st.markdown(embedding_line(ws))
    rows = [{"encoder": describe(a), "made": time.strftime("%d %b %H:%M", time.localtime(a["created_at"])),
             "score on your labels": f"{scores[a['id']]:.0%}" if scores.get(a["id"]) is not None else "—",
             "in use": "✓" if a["id"] == choice.get("encoder_artifact_id") else ""} for a in arts]
    st.dataframe(rows, hide_index=True, width="stretch")
    if picker:
        encoder_picker(ws)


def _live(ws: Workspace) -> None:
    """Everything that changes while a run goes: its card, whether Start is allowed, the encoders and
    past runs. One fragment, so a page (re)loaded mid-run still turns fresh when the run ends."""
    current = _job_panel(ws)
    blocked = current is not None and current["status"] in (*ACTIVE, *HELD_JOB_STATES)
    if blocked:
        st.caption("One pretraining job at a time: cancel, discard or finish the current one to start another.")
    _start_form(ws, disabled=blocked)
    _encoders(ws, picker=current is None or current["status"] not in ENDED)
    _past_runs(ws)


def render() -> None:
    st.title("Pretrain")
    ws = require_workspace()
    refusal = pretrain_refusal(workspace_modality(ws))
    if refusal:  # no form: a job started here would only fail
        st.info(refusal.replace(" WS", f" {ws.root}"))
        _encoders(ws, picker=False)
        return
    n = ws.store.count_items()
    noun, plural = workspace_modality(ws).noun, workspace_modality(ws).plural
    if n == 0:
        st.info(f"Add {plural} on the Data page first; pretraining learns from all of them, no labels needed.")
        return
    st.caption(f"Learn features from {'the' if n == 1 else 'all'} {count(n, noun, plural)} without labels. Training "
               "runs in a background worker: you can keep labelling and exploring, and close this tab.")
    reap_dead_jobs(ws)
    current = _current_job(ws)
    busy = current is not None and current["status"] in ACTIVE
    st.fragment(_live, run_every=1.0 if busy else None)(ws)
    if workspace_modality(ws).name == "text":  # bring your own sentence model
        local_model_form(ws)
