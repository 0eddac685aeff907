"""The Label page."""

import streamlit as st

from sslapp.ui.common import require_workspace


def render() -> None:
    st.title("Label")
    require_workspace()
    st.info("This page is being built.")
