"""Errors in the app: a symlinked workspace works, anything that breaks is a plain message with a way out.

AppTest runs the real app.py on real workspaces (a folder linked in from elsewhere, a database that
is not one, a link to a disk that is gone); the CLI runs in real processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from embed_helpers import make_workspace
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("SSLAPP_WORKSPACE", raising=False)
    monkeypatch.setenv("SSLAPP_HOME", str(tmp_path / "home"))
    import sslapp.ui.common as common

    monkeypatch.setattr(common, "WORKSPACES_HOME", tmp_path / "home")
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.message for e in at.exception]  # never Streamlit's traceback element
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_a_symlinked_workspace_opens_and_works_in_the_app(home, tmp_path):
    ws, _ = make_workspace(tmp_path / "other-disk", per_class=2)  # 6 images, kept on "another disk"
    (home / "default").symlink_to(ws.root, target_is_directory=True)
    (home / "big").symlink_to(ws.root, target_is_directory=True)
    at = run(AppTest.from_file(APP))
    assert at.title[0].value == "Data" and not errors(at)
    assert at.metric[0].label == "Images" and at.metric[0].value == "6"
    assert at.selectbox(key="ws_select").options == ["big", "default"]
    assert at.selectbox(key="ws_select").value == "default"
    at.selectbox(key="ws_select").set_value("big")
    run(at)
    assert at.selectbox(key="ws_select").value == "big" and at.metric[0].value == "6"
    assert at.session_state["workspace_path"] == str(home.resolve() / "big")  # the link's name, not its target
    # moving to another page drops the address's ?ws=; the next run names the session's workspace again,
    # so a reload opens it and not the default (issue 22: a reload mid-pretraining lost the workspace)
    at.query_params.clear()
    assert run(at).query_params["ws"] in ("big", ["big"])
    again = AppTest.from_file(APP)
    again.query_params["ws"] = "big"
    assert run(again).selectbox(key="ws_select").value == "big"


def test_a_workspace_that_cannot_be_opened_is_a_plain_message_with_a_way_out(home):
    run(AppTest.from_file(APP))  # makes `default`
    broken = home / "broken"
    broken.mkdir()
    (broken / "sslapp.db").write_bytes(b"this is not a database, it was overwritten" * 100)
    at = AppTest.from_file(APP)
    at.query_params["ws"] = "broken"
    run(at)
    shown = errors(at)
    assert len(shown) == 1 and "The workspace could not be opened" in shown[0] and "`broken`" in shown[0]
    assert "not a database" in shown[0] and "Traceback" not in shown[0]
    assert at.selectbox(key="way_out_open").options == ["default"]  # the way out: the other workspaces
    at.selectbox(key="way_out_open").set_value("default")
    run(at)
    assert not errors(at) and at.title[0].value == "Data"
    assert at.selectbox(key="ws_select").value == "default"
    assert (broken / "sslapp.db").read_bytes().startswith(b"this is not a database")  # left as it was


def test_a_link_to_a_missing_disk_is_refused_in_words_and_a_new_workspace_is_one_form_away(home, tmp_path):
    (home / "default").symlink_to(tmp_path / "unmounted" / "ws", target_is_directory=True)
    at = run(AppTest.from_file(APP))
    shown = errors(at)
    assert len(shown) == 1 and "which is not there" in shown[0] and "unmounted" in shown[0]
    assert not (tmp_path / "unmounted").exists()  # no folder made where the disk should be
    at.text_input(key="way_out_name").input("../escape")
    at.button(key="FormSubmitter:way_out_new-Create and open").click()
    run(at)
    assert any("not a valid workspace name" in e for e in errors(at))
    at.text_input(key="way_out_name").input("fresh")
    at.button(key="FormSubmitter:way_out_new-Create and open").click()
    run(at)
    assert not errors(at) and at.title[0].value == "Data"
    assert (home / "fresh" / "sslapp.db").exists() and at.selectbox(key="ws_select").value == "fresh"


def test_a_bad_workspace_name_in_the_link_is_said_and_the_default_opens(home):
    at = AppTest.from_file(APP)
    at.query_params["ws"] = "../../etc"
    run(at)
    warned = [w.value for w in at.sidebar.warning]
    assert any("not a valid workspace name" in w and "default one is open" in w for w in warned), warned
    assert at.title[0].value == "Data" and (home / "default" / "sslapp.db").exists()


def _app_with_a_failing_page():
    """A page that fails as pages do (a file gone from under it), run the way app.py runs pages."""
    from pathlib import Path

    import streamlit as st

    from sslapp.ui.errors import guarded

    def failing_page():
        st.title("Train")
        Path(st.session_state["missing_file"]).read_bytes()

    if guarded(lambda: None, "The workspace could not be opened"):
        guarded(failing_page, "This page stopped")


def test_a_page_error_is_a_plain_message_with_the_way_out(home, tmp_path):
    for name in ("default", "second"):
        from sslapp.workspace import open_workspace

        open_workspace(home / name)
    at = AppTest.from_function(_app_with_a_failing_page)
    at.session_state["missing_file"] = str(tmp_path / "gone.npz")
    at.session_state["workspace_path"] = str(home / "default")
    run(at)
    shown = errors(at)
    assert len(shown) == 1 and shown[0].startswith("**This page stopped** (workspace `default`).")
    assert "No such file or directory" in shown[0] and "Traceback" not in shown[0]
    assert at.selectbox(key="way_out_open").options == ["second"]


def test_streamlit_shows_no_details_and_no_help_links_for_what_reaches_it():
    from streamlit.config import ShowErrorDetailsConfigOptions

    client = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["client"]
    assert client["showErrorDetails"] == ShowErrorDetailsConfigOptions.NONE
    assert client["showErrorLinks"] is False  # no "Ask Google" / "Ask ChatGPT"


def test_the_cli_works_through_a_symlinked_workspace(tmp_path):
    ws, _ = make_workspace(tmp_path / "other-disk", per_class=2)
    link = tmp_path / "home" / "ws"
    link.parent.mkdir()
    link.symlink_to(ws.root, target_is_directory=True)
    labels = tmp_path / "labels.csv"
    item = ws.store.items()[0]
    labels.write_text(f"item,class\n{item['id']},red\n", encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "sslapp", "label", str(link), "--csv", str(labels), "--json"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([sys.executable, "-m", "sslapp", "info", str(link), "--json"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["items"] == 6 and info["labels_per_class"] == {"red": 1}
    assert ws.store.labels()[0]["item_id"] == item["id"]  # written where the link points
    (tmp_path / "gone").symlink_to(tmp_path / "unmounted", target_is_directory=True)
    out = subprocess.run([sys.executable, "-m", "sslapp", "info", str(tmp_path / "gone")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2 and "which is not there" in out.stderr and "Traceback" not in out.stderr
