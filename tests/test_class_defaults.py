"""Class pickers that act on many images never open on a class the images do not point to (issue 22).

More like this (from the Label page and the Explore preview) opens on the image's own label, else the
classifier's prediction for it, else on no class with the bulk button disabled; the Explore selection's
picker does the same with the class most of the selection has. Real workspace, real embed and finetune
jobs, Streamlit's AppTest. The first class, "zebra", has no images: the old default, a trap.
"""

from __future__ import annotations

import pytest
from embed_helpers import make_workspace
from streamlit.testing.v1 import AppTest

LABEL_APP = "from sslapp.ui.pages import label\nlabel.render()\n"
EXPLORE_APP = "from sslapp.ui.pages import explore\nexplore.render()\n"


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """12 images in 3 colours with the pixel start's features and map (what More like this reads)."""
    from sslapp.cli.common import run_job_in_foreground

    ws, truth = make_workspace(tmp_path, per_class=4)
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    ws.store.set_setting("features.starts", ["pixels"])
    job = run_job_in_foreground(ws, "embed", {"provisional": False, "clusters": "kmeans", "k": 3})
    assert job["status"] == "done", job["error"]
    for name in ("zebra", "blue", "green", "red"):
        ws.store.class_id(name, create=True)
    ws.truth = {r["id"]: truth[r["source"]] for r in ws.store.items()}
    return ws


def run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.message for e in at.exception]
    return at


def of(ws, colour: str) -> list[int]:
    return sorted(i for i, c in ws.truth.items() if c == colour)


def more_like_this_from_the_preview(ws, item_id: int) -> AppTest:
    at = AppTest.from_string(EXPLORE_APP)
    at.session_state["explore_selection"] = [item_id]
    run(at)
    at.button(key="explore_similar").click()
    return run(at)


def test_no_label_and_no_classifier_opens_on_no_class_with_the_bulk_button_disabled(ws):
    at = run(AppTest.from_string(LABEL_APP))
    shown = int(next(c.value for c in at.caption if c.value.startswith("#") and " · " in c.value)[1:].split(" ")[0])
    at.button(key=f"label_{shown}_similar").click()
    run(at)
    assert at.selectbox(key="similar_class").value is None
    apply = at.button(key="similar_apply")
    assert apply.label.startswith("Label ") and apply.disabled
    at.selectbox(key="similar_class").set_value("red")  # the user chooses: now it can act
    run(at)
    assert not at.button(key="similar_apply").disabled


def test_the_query_images_own_label_is_the_default(ws):
    query = of(ws, "green")[0]
    ws.store.set_labels([query], ws.store.class_id("green"), source="user")
    at = more_like_this_from_the_preview(ws, query)
    assert at.selectbox(key="explore_class").value == "green"  # one image: its own label
    assert at.selectbox(key="similar_class").value == "green"
    apply = at.button(key="similar_apply")
    assert not apply.disabled
    apply.click()
    run(at)
    labelled = {r["item_id"]: r["class_name"] for r in ws.store.labels()}
    assert set(labelled.values()) == {"green"} and query in labelled


def test_else_the_classifiers_prediction_and_a_selection_takes_the_class_most_of_it_has(ws):
    from sslapp.cli.common import run_job_in_foreground

    for colour in ("blue", "green", "red"):
        ws.store.set_labels(of(ws, colour)[:2], ws.store.class_id(colour), source="user")
    job = run_job_in_foreground(ws, "finetune", {"mode": "linear", "propagate": "off"})
    assert job["status"] == "done", job["error"]
    query = of(ws, "red")[3]  # unlabelled
    predicted = ws.store.predicted_classes([query])
    assert predicted == {query: "red"}  # colour squares: the classifier gets it right
    at = more_like_this_from_the_preview(ws, query)
    assert at.selectbox(key="similar_class").value == "red"
    assert not at.button(key="similar_apply").disabled

    explore = AppTest.from_string(EXPLORE_APP)
    explore.session_state["explore_selection"] = of(ws, "blue")[2:]  # unlabelled, predicted blue
    run(explore)
    assert explore.selectbox(key="explore_class").value == "blue"
    explore.selectbox(key="explore_class").set_value("green")  # the user's choice stays for this selection
    run(explore)
    assert explore.selectbox(key="explore_class").value == "green"
    mixed = of(ws, "blue")[2:] + of(ws, "green")[2:] + of(ws, "red")[2:]  # no class holds a majority
    explore.session_state["explore_selection"] = mixed
    run(explore)
    assert explore.selectbox(key="explore_class").value is None
    assert explore.button(key="explore_apply_label").disabled
    assert explore.button(key="explore_apply_label").label == f"Label {len(mixed)} selected"
