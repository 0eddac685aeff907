"""When something breaks: a plain message and a way out (another workspace), never a traceback page.

app.py runs the sidebar's workspace picker and the page through `guarded`. An error becomes one
`st.error` in words, with the traceback in the app's log, and the way out below it: open another
workspace or make a new one, without touching the one that failed. Errors inside a fragment's own
rerun never reach app.py; Streamlit shows them as its generic message, without details or links
(`client.showErrorDetails = "none"`, `client.showErrorLinks = false` in .streamlit/config.toml).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from streamlit.errors import FragmentHandledException

from sslapp.ui.common import switch_workspace, workspace_names

log = logging.getLogger("sslapp.app")


def guarded(step: Callable[[], object], what_failed: str) -> bool:
    """Run one step of the app; on an error show `what_failed` and the reason in words, and the way out.

    Returns whether the step finished. Streamlit's own control flow (st.stop, st.rerun) passes
    through: those are not errors.
    """
    try:
        step()
    except FragmentHandledException:  # a fragment's error, shown already by Streamlit in its place
        way_out()
        raise
    except Exception as exc:
        log.exception("%s", what_failed)
        current = st.session_state.get("workspace_path") or os.environ.get("SSLAPP_WORKSPACE")
        where = f" (workspace `{Path(current).name}`)" if current else ""
        st.error(f"**{what_failed}**{where}. {plain_reason(exc)}", icon=":material/error:")
        way_out()
        return False
    return True


def plain_reason(exc: BaseException) -> str:
    """The error's own message (sslapp's errors say what to do), never a traceback."""
    message = str(exc).strip().rstrip(".")
    if not message:
        message = f"an unexpected {type(exc).__name__}"
    return f"{message[0].upper()}{message[1:]}. (The details are in the app's log.)"


def way_out() -> None:
    """Open another workspace, or make a new one: the session moves on, the failing one is left as it is."""
    fixed = os.environ.get("SSLAPP_WORKSPACE")
    if fixed:
        st.info(f"This app was started on the workspace `{fixed}` (SSLAPP_WORKSPACE). Restart it on another "
                "workspace, or fix this one and reload the page.")
        return
    current = st.session_state.get("workspace_path")
    current_name = Path(current).name if current else None
    others = [n for n in workspace_names() if n != current_name]
    with st.container(border=True, key="way_out"):
        st.markdown("**Open another workspace** (nothing in this one is changed):")
        if others:
            choice = st.selectbox("Workspace", others, index=None, placeholder="Pick a workspace",
                                  key="way_out_open")
            if choice:
                switch_workspace(choice, where=st)
        with st.form("way_out_new", clear_on_submit=True, border=False):
            name = st.text_input("New workspace", placeholder="my-project", key="way_out_name")
            if st.form_submit_button("Create and open") and name:
                switch_workspace(name, where=st)
