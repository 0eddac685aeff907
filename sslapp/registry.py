"""One registry per kind of thing (SSL methods, backbones, starting points, strategies, job kinds,
modalities), each entry with a name, a one-line description, a target and its defaults, as timm
registers models.

A target is a "module:attribute" string imported only when the entry is used, so pages and the CLI
list names and descriptions without importing torch. Imports nothing of sslapp.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One thing a user or the code can pick by name."""

    name: str
    description: str
    target: str = ""  # "module:attribute"; empty where the name alone is the thing (e.g. `auto`)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """The object the target names (imports its module)."""
        if not self.target:
            raise LookupError(f"{self.name!r} names no code to load")
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


class Registry(Mapping[str, Entry]):
    """An ordered, read-only table of entries of one kind; unknown names get a message listing the known."""

    def __init__(self, kind: str, entries: Iterable[Entry]):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        for entry in entries:
            if entry.name in self._entries:
                raise ValueError(f"{kind} {entry.name!r} is registered twice")
            self._entries[entry.name] = entry

    def __getitem__(self, name: str) -> Entry:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get_entry(self, name: str) -> Entry:
        """The entry called `name`, or a ValueError that names the choices."""
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}")
        return self._entries[name]

    def load(self, name: str) -> Any:
        return self.get_entry(name).load()

    def descriptions(self) -> dict[str, str]:
        """{name: one-line description}, in registration order: what the pages and `--help` show."""
        return {name: entry.description for name, entry in self._entries.items()}
