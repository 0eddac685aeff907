"""Fault: the Streamlit server restarts mid-session. Labels stay, and the running job is still shown.

The worker runs in its own session (as `ensure_worker` starts it), so stopping the server does
not stop training; after the restart the browser reconnects and the pages read everything back
from the workspace database.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from streamlit_driver import (
    ROOT,
    body_text,
    label_with_key,
    nav,
    open_page,
    screenshot,
    wait_for_text,
    wait_ready,
)

from sslapp.jobs.launcher import ensure_worker

sys.path.insert(0, str(ROOT / "tests"))
from test_faults import TINY_PRETRAIN, tiny_workspace, wait_for  # noqa: E402


def lower_priority(pid: int, niceness: int = 10) -> None:
    """Renice every thread of a process (Linux sets niceness per thread): its training then uses the
    cores the tests beside this one leave idle, and still makes steps when they are busy."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.setpriority(os.PRIO_PROCESS, int(tid), niceness)


def test_server_restart_keeps_labels_and_shows_the_running_job(app_factory, page, tmp_path):
    ws = tiny_workspace(tmp_path / "ws", tmp_path / "images")
    ws.store.class_id("warm", create=True)
    ws.store.class_id("cool", create=True)
    app = app_factory(ws.root, fresh=True)  # this test restarts the server

    # label three images with the keyboard, as a user does
    open_page(page, app, "label")
    for key in "121":
        label_with_key(page, key)
    wait_for_text(page, "3 labelled · 2 classes")
    before = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
    assert len(before) == 3

    # a long run, started only now: a worker that trains uses a whole core, which the tests beside this one need
    job_id = ws.store.enqueue_job("pretrain", {**TINY_PRETRAIN, "epochs": 200})
    ensure_worker(ws)  # what the Pretrain page's Start does
    nav(page, "Pretrain")
    wait_for_text(page, "SimCLR · resnet18-std backbone · running", timeout=240)
    wait_for(lambda: ws.store.job(job_id)["progress"].get("global_step", 0) >= 1, timeout=240, what="a step")
    lower_priority(ws.store.get_setting("worker")["pid"])  # it trains until the cancel below
    step_before = ws.store.job(job_id)["progress"]["global_step"]

    app.restart()  # the server process goes away and comes back; the browser tab stays open

    page.reload()
    wait_ready(page)
    wait_for_text(page, "SimCLR · resnet18-std backbone · running", timeout=120)
    assert re.search(r"epoch \d+ of 200", body_text(page)), body_text(page)[:2000]
    screenshot(page, "pretrain-after-restart")
    # training went on while the server was down, and it is still going
    wait_for(lambda: ws.store.job(job_id)["progress"].get("global_step", 0) > step_before, timeout=240,
             what="more steps after the restart")
    assert ws.store.job_status(job_id) == "running"
    nav(page, "Label")
    wait_for_text(page, "3 labelled · 2 classes")
    assert {r["item_id"]: r["class_name"] for r in ws.store.labels()} == before
    ws.store.request_job_stop(job_id, "cancel")
    wait_for(lambda: ws.store.job_status(job_id) == "cancelled", timeout=120, what="cancel")
    summary = Path(ROOT / "test-artifacts" / "faults")
    summary.mkdir(parents=True, exist_ok=True)
    (summary / "server_restart.json").write_text(json.dumps(
        {"labels_before": len(before), "labels_after": len(ws.store.labels()), "job_shown_after_restart": True,
         "steps_before_restart": step_before, "steps_at_cancel": ws.store.job(job_id)["progress"]["global_step"]}))
