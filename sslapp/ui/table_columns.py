"""The Data page's pickers for tables of texts: which column holds the texts, and which the labels.

An upload (or a server file) that holds tables (CSV, TSV, JSON Lines, Parquet) gets two select boxes
before it is added: the text column (by default left to ingestion, which takes the column of the
longest strings; the box says which that is now) and an optional label column. Their choices go to
the ingest job as `text_column` and `label_column`, for every table of the upload. The columns are
read with the text modality's own readers (`sslapp.modalities.text.tables`), so the names offered are
the names ingestion will look for; a large file is judged by its first rows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

import streamlit as st

from sslapp.modalities import BadItem
from sslapp.modalities.text import tables
from sslapp.modalities.text.decode import TABLE_EXTS, detect_text_column

HEAD_BYTES = 1 << 20  # a CSV, TSV or JSON Lines file is judged by its first MiB of rows
DETECT = "detect"
NONE = "none"


def is_table(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in TABLE_EXTS


def _read(data: bytes, ext: str) -> tables.Table:
    if ext in (".csv", ".tsv"):
        return tables.read_delimited(data, "\t" if ext == ".tsv" else ",")
    if ext == ".parquet":
        return tables.read_parquet(data)
    return tables.read_jsonl(data)


def read_columns(name: str, data: bytes) -> tuple[list[str], str | None]:
    """(the table's columns, the text column ingestion would detect or None); raises BadItem with a reason
    when the file cannot be read as the table its suffix says."""
    ext = PurePosixPath(name).suffix.lower()
    table = None
    if ext != ".parquet" and len(data) > HEAD_BYTES:  # the first rows, cut after a whole line
        head = data[:data.rfind(b"\n", 0, HEAD_BYTES) + 1]
        try:
            table = _read(head, ext)
        except BadItem:  # a quoted field may run past the cut: read it all
            table = None
    table = table or _read(data, ext)
    try:
        detected = detect_text_column(table, None)
    except BadItem:
        detected = None
    return table.columns, detected


@st.cache_data(show_spinner=False, max_entries=64)
def _columns_cached(key: str, name: str, _read: Callable[[], bytes]) -> tuple[list[str], str | None, str | None]:
    """(columns, detected, problem) for one file, read once per file (its key: an upload's id, or a path, size
    and mtime)."""
    try:
        columns, detected = read_columns(name, _read())
    except BadItem as exc:
        return [], None, str(exc)
    return columns, detected, None


def columns_of(files: list[tuple[str, str, Callable[[], bytes]]]) -> dict[str, tuple[list[str], str | None, str | None]]:
    """{file name: (columns, detected text column, problem)} for the tables among (key, name, read its bytes)
    files; a file is read only the first time it is seen."""
    return {name: _columns_cached(key, name, read) for key, name, read in files if is_table(name)}


def table_options(found: dict[str, tuple[list[str], str | None, str | None]], key: str) -> dict[str, str]:
    """Draw the two pickers for these tables; returns the ingest job's options ({} when left to ingestion)."""
    if not found:
        return {}
    columns = list(dict.fromkeys(c for cols, _, _ in found.values() for c in cols))
    detected = list(dict.fromkeys(d for _, d, _ in found.values() if d))
    for name, (_, _, problem) in found.items():
        if problem:
            st.warning(f"{name} cannot be read as a table: {problem}")
    if not columns:
        return {}
    now = f" (now {', '.join(repr(d) for d in detected)})" if detected else ""
    left, right = st.columns(2)
    text = left.selectbox("Text column", [DETECT, *columns], key=f"{key}_text_column",
                          format_func=lambda c: f"detect: the longest texts{now}" if c == DETECT else c,
                          help="The column that holds the texts, one text per row. Left to detect, each table's "
                               "column of the longest strings is taken.")
    label = right.selectbox("Label column (optional)", [NONE, *columns], key=f"{key}_label_column",
                            format_func=lambda c: "no labels" if c == NONE else c,
                            help="A column of class names: each row's is imported as its label (marked imported).")
    if len(found) > 1:
        st.caption(f"These apply to all {len(found)} tables; a table without the column is skipped, with its "
                   "columns named in the report.")
    if text != DETECT and text == label:
        st.warning(f"{text!r} is picked as both the text and the label column; pick another for one of them.")
    options = {}
    if text != DETECT:
        options["text_column"] = text
    if label != NONE:
        options["label_column"] = label
    return options
