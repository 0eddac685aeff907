"""'Add a local model folder' on the Pretrain page of a text workspace: a sentence-transformers or Hugging
Face folder on the server becomes one more candidate embedding.

The page only asks: the button enqueues an `add_model` job (checked, copied, loaded and tried by the worker;
`sslapp.features.local_model`) that queues a new map when it is done, and makes sure a worker runs; a
fragment polls the newest such job while it runs and says how it ended, the refusal's words included.
Nothing here reads the folder or loads a model.
"""

from __future__ import annotations

import streamlit as st

from sslapp.jobs.launcher import ensure_worker
from sslapp.store.states import ACTIVE_JOB_STATES, JobState
from sslapp.ui.common import STATUS_WORDS
from sslapp.ui.item_view import md_escape
from sslapp.workspace import Workspace

KIND = "add_model"
HELP = ("A sentence-transformers or Hugging Face folder on the machine the app runs on, e.g. a downloaded "
        "paraphrase-multilingual-MiniLM-L12-v2: model.safetensors, config.json and tokenizer.json (pickled "
        "pytorch_model.bin weights are never loaded). Its files are copied into the workspace and checked by "
        "hash before every load; the app measures it against the other embeddings on your labels.")


def _add(ws: Workspace) -> None:
    folder = (st.session_state.get("lm_folder") or "").strip()
    if not folder:
        st.session_state["lm_error"] = "Name the model's folder first."
        return
    name = (st.session_state.get("lm_name") or "").strip() or None
    ws.store.enqueue_job(KIND, {"folder": folder, "name": name, "map": True})
    ensure_worker(ws)


def _status(ws: Workspace) -> None:
    jobs = ws.store.jobs(kind=KIND, limit=1)
    if not jobs:
        return
    job = jobs[0]
    status, result = job["status"], job.get("result") or {}
    folder = md_escape(job["params"].get("folder", ""))  # the user's words: never Markdown
    if status in ACTIVE_JOB_STATES:
        message = (job.get("progress") or {}).get("message") or STATUS_WORDS.get(status, status)
        st.caption(f"Adding the model in {folder}: {md_escape(message)}…")
    elif status == JobState.DONE:
        notes = md_escape("; ".join(result.get("notes") or []))
        st.success(f"Added your model '{md_escape(result.get('name', ''))}' ({result.get('model_type')}, "
                   f"{result.get('dim')}-d, {result.get('pooling')} pooling): {notes}. The map is drawn again, and "
                   "the app uses it where it measures best on your labels.", icon=":material/check:")
    elif status == JobState.FAILED:
        st.error(f"The model in {folder} was not added: {md_escape(job.get('error') or '')}. Nothing else changed.",
                 icon=":material/error:")
    else:
        st.caption(f"Adding the model in {folder}: {STATUS_WORDS.get(status, status)}.")


def local_model_form(ws: Workspace) -> None:
    """The section: the folder (and an optional name), the button, and the newest add's state."""
    st.subheader("Add a local model folder")
    busy = bool(ws.store.jobs(kind=KIND, statuses=list(ACTIVE_JOB_STATES), limit=1))
    c1, c2, c3 = st.columns([4, 2, 1], vertical_alignment="bottom")
    c1.text_input("Model folder on the server", key="lm_folder", help=HELP,
                  placeholder="/models/paraphrase-multilingual-MiniLM-L12-v2")
    c2.text_input("Name (optional)", key="lm_name", help="How the app names it (default: the folder's name); "
                  "adding a name again replaces that model.")
    c3.button("Add", key="lm_add", disabled=busy, on_click=_add, args=(ws,), icon=":material/add:")
    error = st.session_state.pop("lm_error", None)
    if error:
        st.error(error, icon=":material/error:")
    st.fragment(run_every=1.0 if busy else None)(_status)(ws)  # polls only while an add runs
