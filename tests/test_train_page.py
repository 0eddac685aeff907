"""The Train page in Streamlit's AppTest: warnings before training, a real training job through
a real worker (a thread here), then the honest estimate, confusion matrix and per-class table."""

from __future__ import annotations

import pytest
from _finetune_ws import make_workspace
from in_process_worker import start_worker_thread
from streamlit.testing.v1 import AppTest

from sslapp.workspace import open_workspace

SCRIPT = "from sslapp.ui.pages import train\ntrain.render()\n"


def _app() -> AppTest:
    return AppTest.from_string(SCRIPT, default_timeout=60).run()


def _texts(at: AppTest) -> str:
    return "\n".join([w.value for w in at.warning] + [i.value for i in at.info] + [e.value for e in at.error]
                     + [m.value for m in at.markdown] + [c.value for c in at.caption])


def test_empty_workspace_explains_what_is_missing(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    open_workspace(root)
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(root))
    at = _app()
    assert not at.exception
    text = _texts(at)
    assert "at least 2 classes" in text and "**Embedding:** not chosen yet" in text
    assert next(b for b in at.button if b.label == "Train").disabled


@pytest.fixture
def trained_page(tmp_path, monkeypatch):
    ws, _ = make_workspace(tmp_path, per_class=8, labels_per_class={"red": 3, "green": 3, "blue": 1})
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    return ws


def test_train_button_runs_a_job_and_shows_honest_results(trained_page):
    ws = trained_page
    at = _app()
    assert not at.exception
    text = _texts(at)
    assert "Only one label for **blue**" in text  # flagged before training
    assert "**Embedding:** not chosen yet" in text  # the worker has not measured one yet
    worker = start_worker_thread(ws, idle_exit_s=5.0)
    at.radio(key="train_mode").set_value("linear")
    next(b for b in at.button if b.label == "Train").click()
    at.run()
    assert not at.exception
    jobs = ws.store.jobs(kind="finetune")
    assert len(jobs) == 1 and jobs[0]["params"]["mode"] == "linear"
    worker.join(timeout=120)
    assert ws.store.job(jobs[0]["id"])["status"] == "done", ws.store.job(jobs[0]["id"])["error"]
    at = _app()
    assert not at.exception
    metric = next(m for m in at.metric if m.label == "Estimated accuracy")
    assert metric.value.endswith("%") and "±" not in metric.value  # one spread everywhere: the 95% interval
    assert metric.proto.delta.startswith("95% interval ")
    assert "95% interval" in _texts(at) and "run " not in _texts(at)  # words, not run ids
    text = _texts(at)
    assert "from 7 labels" in text and "not a test accuracy" in text
    assert "Only one label for 'blue'" in text  # the run's own warning
    assert "**Embedding:** SimCLR resnet18-std" in text  # which embedding, measured or chosen
    assert at.get("plotly_chart"), "confusion matrix missing"
    frames = at.dataframe
    per_class = next(f.value for f in frames if "recall" in f.value.columns)
    assert set(per_class["class"]) == {"red", "green", "blue"}
    assert per_class.set_index("class").loc["blue", "note"] == "single label"
    counts = next(f.value for f in frames if "predicted images" in f.value.columns)
    assert counts["predicted images"].sum() == 24


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_review_galleries_show_doubts_and_likely_errors_and_a_click_fixes_the_label(tmp_path, monkeypatch):
    from sslapp.cli.common import run_job_in_foreground
    from sslapp.curate.read import REVIEW_SETTING

    ws, truth = make_workspace(tmp_path, per_class=8, labels_per_class={"red": 6, "green": 6, "blue": 6})
    planted = next(i for i, t in truth.items() if t == "red" and ws.store.item(i)["label"] == "red")
    ws.store.set_labels([planted], ws.store.class_id("green"), source="user")  # a wrong label
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    job = run_job_in_foreground(ws, "finetune", {"mode": "linear", "propagate": "off"})
    assert job["status"] == "done", job["error"]
    at = _app()
    assert not at.exception
    text = _texts(at)
    assert "have not been checked yet" in text and "Images it is least sure about" in text
    # the unlabelled image the classifier is least sure about is one click from a label
    first = next(b for b in at.button if b.label.startswith("Label as ") and b.key.startswith("uns_fix_"))
    item_id, predicted = int(first.key.rsplit("_", 1)[1]), first.label.removeprefix("Label as ")
    first.click()
    at.run()
    assert not at.exception
    assert ws.store.item(item_id)["label"] == predicted and ws.store.item(item_id)["label_source"] == "user"
    name = ws.store.item(item_id)["source"].split("/")[-1].replace(".", "\\.")  # its file, not its class folder
    assert [s.value for s in at.success] == [f"Labelled **{name}** as **{predicted}**."]  # words, not ids
    # "Check my labels" asks the worker for a review; the page shows what it found
    worker = start_worker_thread(ws, idle_exit_s=5.0)
    _button(at, "Check my labels").click()
    at.run()
    assert not at.exception
    worker.join(timeout=60)
    jobs = ws.store.jobs(kind="review")
    assert len(jobs) == 1 and ws.store.job(jobs[0]["id"])["status"] == "done", ws.store.job(jobs[0]["id"])["error"]
    review = ws.store.get_setting(REVIEW_SETTING)
    assert review["rows"][0]["item"] == planted and review["rows"][0]["suggested"] == "red"
    at = _app()
    assert not at.exception
    assert "Labelled **green**; the images most like it say **red**" in _texts(at)
    _button(at, "Change to red").click()
    at.run()
    assert not at.exception
    assert ws.store.item(planted)["label"] == "red"
    assert "Labelled **green**, looks like **red**" not in _texts(at)
