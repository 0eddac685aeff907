"""The app shell in AppTest: navigation, the default workspace on a first visit, the workspace picker."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("SSLAPP_WORKSPACE", raising=False)
    monkeypatch.setenv("SSLAPP_HOME", str(tmp_path / "home"))
    import sslapp.ui.common as common

    monkeypatch.setattr(common, "WORKSPACES_HOME", tmp_path / "home")
    return tmp_path / "home"


def run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_first_visit_opens_a_default_workspace_with_the_sample_one_click_away(home):
    at = run(AppTest.from_file(APP))
    assert (home / "default" / "sslapp.db").exists()
    assert at.selectbox(key="ws_select").value == "default"
    assert "Load sample data" in [b.label for b in at.button]
    assert at.title[0].value == "Data"


def test_new_workspace_names_cannot_escape_the_home_folder(home):
    at = run(AppTest.from_file(APP))
    at.text_input(key="ws_new_name").input("../outside")
    at.button(key="FormSubmitter:new_ws-Create").click()
    run(at)
    assert any("not a valid workspace name" in e.value for e in at.sidebar.error)
    assert not (home.parent / "outside").exists()
    at.text_input(key="ws_new_name").input("project-2")
    at.button(key="FormSubmitter:new_ws-Create").click()
    run(at)
    assert (home / "project-2" / "sslapp.db").exists()
    assert at.selectbox(key="ws_select").value == "project-2"
    at.selectbox(key="ws_select").set_value("default")
    run(at)
    assert at.selectbox(key="ws_select").value == "default"
    assert at.session_state["workspace_path"] == str((home / "default").resolve())
