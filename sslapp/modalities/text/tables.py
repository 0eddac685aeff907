"""Reading the files texts come in, strictly: CSV and TSV (pandas), JSON Lines (line by line, so one bad
line is that row's problem only), Parquet (pyarrow) and plain UTF-8 text.

Every reader returns a `Table`: its column names, each column's values per row, and the rows it could
not read with the reason. Whatever makes the whole file unusable (not UTF-8, empty, malformed) raises
`BadItem` with a reason a person can act on; nothing is guessed (no fallback encodings, no lenient
parsing that would drop or merge fields silently).
"""

from __future__ import annotations

import codecs
import io
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

from sslapp.modalities.base import BadItem

UTF8_HINT = "save it as UTF-8"
TEXT_TYPES = ("string", "large_string", "string_view")  # Arrow's names of text columns


@dataclass
class Table:
    """A file's rows: `values[column][i]` is row `rows[i]` (1-based, header not counted); `errors` the
    rows that could not be read, as (row, "kind: reason")."""

    columns: list[str]
    values: dict[str, list[Any]]
    rows: list[int]
    errors: list[tuple[int, str]] = field(default_factory=list)
    types: dict[str, str] | None = None  # each column's declared type (Parquet); None: judge by the values
    unit: str = "row"  # what a row is called in messages ("line" in JSON Lines, where rows are lines)

    def is_typed_text(self, column: str) -> bool:
        """Whether a column may hold texts: by its declared type where the file has one."""
        if self.types is None:
            return True
        kind = self.types[column]
        if kind.startswith("dictionary<values="):  # a categorical column: judged by its values' type
            kind = kind[len("dictionary<values="):].split(",")[0]
        return kind in TEXT_TYPES


def check_not_empty(data: bytes) -> None:
    if not data:
        raise BadItem("empty", "the file is empty (0 bytes)")
    if not data.strip() or not data.lstrip(codecs.BOM_UTF8).strip():
        raise BadItem("empty", "the file holds only whitespace")


def utf8_text(data: bytes) -> str:
    """The file's text: UTF-8 (a BOM is dropped), or UTF-16 when it starts with a UTF-16 BOM (as
    Windows tools save "Unicode text"); anything else is refused, naming where it fails."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise BadItem("not-utf8", f"starts as UTF-16 but cannot be read as it ({exc.reason}); "
                                      f"{UTF8_HINT}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise BadItem("not-utf8", f"not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} (byte offset "
                                  f"{exc.start:,}) is not UTF-8; {UTF8_HINT}") from None


def read_delimited(data: bytes, sep: str) -> Table:
    """CSV (sep ",") or TSV (sep "\\t") with a header row; every field read as a string, as written."""
    import pandas as pd

    check_not_empty(data)
    text = utf8_text(data)
    what = "TSV" if sep == "\t" else "CSV"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # "loss of data": a row with extra fields
            df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False,
                             index_col=False, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise BadItem("empty", f"the {what} holds no header and no rows") from None
    except pd.errors.ParserWarning:
        raise BadItem("bad-table", f"cannot read this {what}: its first row has more fields than the header. "
                                   "Every row needs as many fields as the header; quote fields that hold the "
                                   "separator") from None
    except (pd.errors.ParserError, ValueError) as exc:
        reason = str(exc).removeprefix("Error tokenizing data. C error: ").rstrip(". \n")
        raise BadItem("bad-table", f"cannot read this {what} ({reason}). Every row needs as many fields "
                                   "as the header; quote fields that hold the separator or a line "
                                   "break") from None
    columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise BadItem("empty", f"the {what} has a header ({', '.join(columns)}) but no rows")
    values = {name: df[c].tolist() for name, c in zip(columns, df.columns, strict=True)}
    return Table(columns, values, list(range(1, len(df) + 1)))


def json_kind(value: Any) -> str:
    return {list: "an array", dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def read_jsonl(data: bytes) -> Table:
    """JSON Lines: one JSON object per line; a line that is not UTF-8, not JSON or not an object is that
    row's error and the others still count. Blank lines are skipped; rows are numbered by line."""
    check_not_empty(data)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    records: list[dict[str, Any]] = []
    rows: list[int] = []
    errors: list[tuple[int, str]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append((number, f"not-utf8: line {number} is not UTF-8 (byte 0x{raw[exc.start]:02x} at "
                                   f"column {exc.start + 1}); {UTF8_HINT}"))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append((number, f"not-json: line {number} is not JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(record, dict):
            errors.append((number, f"not-an-object: line {number} is {json_kind(record)}, not a JSON object "
                                   "with named fields"))
            continue
        records.append(record)
        rows.append(number)
    if not records and not errors:
        raise BadItem("empty", "the file holds no JSON lines")
    columns = list(dict.fromkeys(k for r in records for k in r))
    values = {c: [r.get(c) for r in records] for c in columns}
    return Table(columns, values, rows, errors, unit="line")


def read_parquet(data: bytes) -> Table:
    """A Parquet file's columns as Python values; its string columns are the text candidates."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_not_empty(data)
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BadItem("corrupt", f"not a readable Parquet file ({exc})") from None
    columns = [str(c) for c in table.column_names]
    if table.num_rows == 0:
        raise BadItem("empty", f"the Parquet file has columns ({', '.join(columns)}) but no rows")
    types = {name: str(f.type) for name, f in zip(columns, table.schema, strict=True)}
    try:
        values = {name: table.column(i).to_pylist() for i, name in enumerate(columns)}
    except UnicodeDecodeError as exc:
        raise BadItem("not-utf8", f"a text column holds bytes that are not UTF-8 ({exc.reason})") from None
    except (pa.ArrowException, ValueError) as exc:
        raise BadItem("corrupt", f"cannot read the Parquet file's values ({exc})") from None
    return Table(columns, values, list(range(1, table.num_rows + 1)), types=types)

