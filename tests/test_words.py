"""Counts in words (issue 22: "1 classes", "class(es)"): the shared helper, the pages and the CLI use it."""

from __future__ import annotations

import ast
from pathlib import Path

from sslapp.words import count, plural_of

ROOT = Path(__file__).resolve().parents[1]


def test_count_says_one_and_many_in_english():
    assert count(1, "class") == "1 class" and count(2, "class") == "2 classes" and count(0, "label") == "0 labels"
    assert count(1, "image") == "1 image" and count(2000, "image") == "2,000 images"
    assert count(3, "copy") == "3 copies" and count(2, "day") == "2 days" and count(2, "box") == "2 boxes"
    assert count(2, "labelled image") == "2 labelled images" and count(2, "machine guess") == "2 machine guesses"
    assert count(2, "datum", "data") == "2 data" and plural_of("batch") == "batches"
    assert count(2, "epoch") == "2 epochs" and count(1, "epoch") == "1 epoch"


def test_no_message_counts_with_an_s_in_brackets():
    """No string in the pages or the CLI says 'image(s)' or 'class(es)': they count with `count`."""
    bad = []
    for path in [*sorted((ROOT / "sslapp" / "ui").rglob("*.py")), *sorted((ROOT / "sslapp" / "cli").rglob("*.py")),
                 ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
                    f"{c}(s)" in node.value or f"{c}(es)" in node.value for c in "abcdefghijklmnopqrstuvwxyz"):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not bad, bad


def test_the_confusion_matrix_hover_counts_labels_in_words():
    from sslapp.ui.pages.train import _confusion_figure

    fig = _confusion_figure({"classes": ["cat", "dog"], "estimate": {"confusion": [[1, 0], [2, 3]]}})
    heatmap = fig.data[0]
    assert [list(row) for row in heatmap.customdata] == [["1 label", "0 labels"], ["2 labels", "3 labels"]]
    assert "%{customdata}" in heatmap.hovertemplate and "%{z} labels" not in heatmap.hovertemplate
