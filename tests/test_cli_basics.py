"""The CLI's shape: help, info, jobs, exit codes and messages on stderr."""

from __future__ import annotations

import json
import subprocess
import sys


def sslapp(*args, check=False):
    return subprocess.run([sys.executable, "-m", "sslapp", *args], capture_output=True, text=True, check=check)


def test_help_lists_the_commands():
    out = sslapp("--help", check=True).stdout
    for command in ("ingest", "info", "worker", "jobs"):
        assert command in out


def test_info_json_on_a_workspace(ws):
    ws.store.class_id("cat", create=True)
    ws.store.enqueue_job("sleep", {})
    result = sslapp("info", str(ws.root), "--json", check=True)
    info = json.loads(result.stdout)
    assert info["items"] == 0 and info["labels_per_class"] == {"cat": 0}
    assert info["jobs"] == {"queued": 1}


def test_info_on_a_missing_workspace_fails_with_a_message(tmp_path):
    result = sslapp("info", str(tmp_path / "nope"))
    assert result.returncode != 0
    assert "not an sslapp workspace" in result.stderr
    assert result.stdout == ""


def test_jobs_cancel_and_resume(ws):
    job_id = ws.store.enqueue_job("sleep", {})
    assert sslapp("jobs", str(ws.root), "cancel", str(job_id)).returncode == 0
    assert ws.store.job_status(job_id) == "cancelled"
    assert sslapp("jobs", str(ws.root), "resume", str(job_id)).returncode == 0
    assert ws.store.job_status(job_id) == "queued"
    bad = sslapp("jobs", str(ws.root), "pause", "999")
    assert bad.returncode != 0 and "cannot pause job 999" in bad.stderr
