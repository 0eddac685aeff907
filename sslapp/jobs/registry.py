"""Job kinds and the handler that runs each; handlers are imported lazily in the worker."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# kind -> "module:function"; each function takes a JobContext and returns a JSON-able result dict.
HANDLERS: dict[str, str] = {
    "pretrain": "sslapp.ssl.job:run_pretrain_job",
    "embed": "sslapp.embed.job:run_embed_job",
    "finetune": "sslapp.finetune.job:run_finetune_job",
    "suggest": "sslapp.select.job:run_suggest_job",
    "export": "sslapp.export.job:run_export_job",
    "sleep": "sslapp.jobs.builtin:run_sleep_job",
    "ingest": "sslapp.ingest.job:run_ingest_job",
}


def handler_for(kind: str) -> Callable[[Any], dict[str, Any]]:
    if kind not in HANDLERS:
        raise KeyError(f"Unknown job kind {kind!r}; known kinds: {', '.join(sorted(HANDLERS))}.")
    module, _, func = HANDLERS[kind].partition(":")
    return getattr(importlib.import_module(module), func)
