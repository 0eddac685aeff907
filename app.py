"""sslapp: the Streamlit app. Run with `bash scripts/app.sh` (or `streamlit run app.py`)."""

from pathlib import Path

import streamlit as st

from sslapp.ui.common import annotator_field, workspace_picker
from sslapp.ui.errors import guarded
from sslapp.ui.pages import data, explore, export, label, pretrain, train

st.set_page_config(page_title="sslapp", page_icon=str(Path(__file__).parent / "sslapp" / "ui" / "icon.png"), layout="wide")
pages = [
    st.Page(data.render, title="Data", icon=":material/photo_library:", url_path="data", default=True),
    st.Page(pretrain.render, title="Pretrain", icon=":material/model_training:", url_path="pretrain"),
    st.Page(explore.render, title="Explore", icon=":material/scatter_plot:", url_path="explore"),
    st.Page(label.render, title="Label", icon=":material/label:", url_path="label"),
    st.Page(train.render, title="Train", icon=":material/school:", url_path="train"),
    st.Page(export.render, title="Export", icon=":material/download:", url_path="export"),
]
page = st.navigation(pages)  # drawn first, so the pages stay reachable whatever fails below
if guarded(workspace_picker, "The workspace could not be opened"):
    annotator_field()
    guarded(page.run, "This page stopped")
