"""Files -> texts: a .txt file is one text; a table (CSV, TSV, JSON Lines, Parquet) is one text per row,
from its text column (named, or the column of the longest strings), with an optional label column.

Each text is whitespace-normalised (`arrays.normalise`): that is what the cache holds, what the encoders
and an exported model read, and what makes two texts the same (`Decoded.key`), so exact copies merge.
A text longer than the cache row is cut there and noted; the original file keeps it whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sslapp.modalities.base import BadItem, Decoded
from sslapp.modalities.text.arrays import TEXT_BYTES, encode_text, normalise
from sslapp.modalities.text.tables import (
    Table,
    check_not_empty,
    json_kind,
    read_delimited,
    read_jsonl,
    read_parquet,
    utf8_text,
)

TABLE_EXTS = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet")  # one text per row
TEXT_EXTS = (".txt",)  # one text per file
EXTENSIONS = frozenset({*TABLE_EXTS, *TEXT_EXTS})
MAX_ITEM_NOTES = 20  # cut texts noted one by one per file; the rest in one line
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
_SAMPLE = 200  # values looked at to tell a column of numbers from a column of texts


def cut_note(chars: int) -> str:
    return (f"{chars:,} characters; the encoders read the first ~{TEXT_BYTES:,} bytes (the original file "
            "keeps the whole text)")


def _one(text: str, part: str = "", label: str | None = None) -> Decoded:
    """One good text as an item, or that part's error when nothing is left after normalising."""
    norm = normalise(text)
    if not norm:
        return Decoded(row=None, part=part, error="empty: no text (only whitespace or NUL bytes)")
    row, cut = encode_text(norm)
    info: dict[str, Any] = {"chars": len(text)}
    if cut:
        info["note"] = cut_note(len(text))
    return Decoded(row=row, part=part, key=norm.encode("utf-8"), label=label, info=info)


def decode_plain(data: bytes) -> list[Decoded]:
    """A .txt file: the whole file is one text."""
    check_not_empty(data)
    text = utf8_text(data)
    if "\x00" in text:
        raise BadItem("not-text", "holds NUL bytes: a binary file, not text")
    return [_one(text)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value) is not None)


def detect_text_column(table: Table, skip: str | None) -> str:
    """The column of strings with the longest mean length (columns of numbers, e.g. ids, are not texts)."""
    best, best_len = None, -1.0
    for column in table.columns:
        if column == skip or not table.is_typed_text(column):
            continue
        strings = [v for v in table.values[column] if isinstance(v, str) and v.strip()]
        if not strings or all(_is_number(v) for v in strings[:_SAMPLE]):
            continue
        mean = sum(len(v) for v in strings) / len(strings)
        if mean > best_len:
            best, best_len = column, mean
    if best is None:
        raise BadItem("no-text-column", f"no column holds text (its columns: {_names(table.columns)}); "
                                        "pass --text-column with the one that does")
    return best


def _names(columns: list[str]) -> str:
    return ", ".join(repr(c) for c in columns) or "none"


def _named(table: Table, column: str, option: str) -> None:
    if column not in table.values:
        raise BadItem("no-column", f"no column {column!r} in this file; its columns are "
                                   f"{_names(table.columns)}. Pass {option} with one of them")


def _label(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN: no label
        return None
    if not isinstance(value, str):
        value = json.dumps(value) if isinstance(value, bool | list | dict) else str(value)  # true, not True
    return value.strip() or None


def decode_table(table: Table, options: Mapping[str, Any]) -> list[Decoded]:
    """A table's rows -> items, in row order; a row without usable text is that row's error."""
    label_col = options.get("label_column") or None
    if label_col is not None:
        _named(table, label_col, "--label-column")
    notes: list[str] = []
    text_col = options.get("text_column") or None
    if text_col is not None:
        _named(table, text_col, "--text-column")
        if not table.is_typed_text(text_col):
            raise BadItem("not-text", f"column {text_col!r} holds {table.types[text_col]} values, not text; "
                                      f"pass --text-column with a text column")
    else:
        text_col = detect_text_column(table, label_col)
        if len(table.columns) > 1:
            notes.append(f"texts from column {text_col!r} (the longest strings of {_names(table.columns)}); "
                         "pass --text-column to choose another")
    texts, labels = table.values[text_col], table.values[label_col] if label_col else None
    out = [(row, Decoded(row=None, part=str(row), error=err)) for row, err in table.errors]
    cut = 0
    for i, row in enumerate(table.rows):
        value, where = texts[i], f"{table.unit} {row}"
        if value is None or (isinstance(value, str) and not value.strip()):
            reason = f"empty: {where} has no text in {text_col!r}"
            out.append((row, Decoded(row=None, part=str(row), error=reason)))
            continue
        if not isinstance(value, str):
            reason = f"not-text: {where}'s {text_col!r} is {json_kind(value)}, not a string"
            out.append((row, Decoded(row=None, part=str(row), error=reason)))
            continue
        item = _one(value, str(row), _label(labels[i]) if labels is not None else None)
        if "note" in item.info:
            cut += 1
            if cut > MAX_ITEM_NOTES:
                del item.info["note"]
        out.append((row, item))
    if cut > MAX_ITEM_NOTES:
        notes.append(f"{cut - MAX_ITEM_NOTES:,} more texts are longer than {TEXT_BYTES:,} bytes; the "
                     f"encoders read the first ~{TEXT_BYTES:,} bytes of each (the original file keeps them "
                     "whole)")
    out.sort(key=lambda pair: pair[0])
    items = [d for _, d in out]
    if notes and items:
        items[0].info["file_notes"] = notes
    return items


def decode_items(data: bytes, size: int, options: Mapping[str, Any]) -> list[Decoded]:
    """File bytes -> its texts; which format by `options["ext"]` (the file's suffix, set by ingest).
    A file without a suffix is Parquet when it starts like one, else plain text. Raises BadItem."""
    ext = str(options.get("ext") or "").lower()
    if ext in (".csv", ".tsv"):
        return decode_table(read_delimited(data, "\t" if ext == ".tsv" else ","), options)
    if ext in (".jsonl", ".ndjson"):
        return decode_table(read_jsonl(data), options)
    if ext == ".parquet" or (not ext and data[:4] == b"PAR1"):
        return decode_table(read_parquet(data), options)
    if ext in TEXT_EXTS or not ext:
        return decode_plain(data)
    raise BadItem("not-text", f"a {ext} file is not a kind of text sslapp reads (use .txt, or a table: "
                              f"{', '.join(TABLE_EXTS)})")
