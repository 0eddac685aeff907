"""Counts in words for the app's and the CLI's messages: "1 class", "2 classes", never "1 classes" or
"class(es)". Plain Python, so the CLI and the pages share it without importing streamlit or torch."""

from __future__ import annotations

_VOWELS = set("aeiou")
_AS_IS = {"epoch": "epochs", "stomach": "stomachs", "monarch": "monarchs"}  # a "ch" said as k takes -s


def plural_of(word: str) -> str:
    """The plural of an English noun (the last word of `word`): classes, copies, images, boxes."""
    head, _, last = word.rpartition(" ")
    if last in _AS_IS:
        last = _AS_IS[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and len(last) > 1 and last[-2] not in _VOWELS:
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def count(n: int, word: str, plural: str | None = None) -> str:
    """`n` and the word it counts: '1 label', '0 labels', '2,000 images', '3 classes' (`plural` where
    English does not add -s or -es)."""
    return f"{n:,} {word if n == 1 else plural or plural_of(word)}"
