"""Job kinds and the handler that runs each, plus idle-time warm-ups; all imported lazily in the worker.

The worker knows only these "module:function" strings, never a feature package, so adding a job kind
or a warm-up is one line here.
"""

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
    "review": "sslapp.curate.review_job:run_review_job",
    "near_duplicates": "sslapp.curate.duplicates_job:run_near_duplicates_job",
}

# "module:function" with no arguments, run once by an idle worker, e.g. compiling numba code so the
# first job that needs it starts fast. A failure is logged, never raised.
WARM_UPS: list[str] = ["sslapp.embed.umap_map:warm_up"]


def _load(target: str) -> Callable[..., Any]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def handler_for(kind: str) -> Callable[[Any], dict[str, Any]]:
    if kind not in HANDLERS:
        raise KeyError(f"Unknown job kind {kind!r}; known kinds: {', '.join(sorted(HANDLERS))}.")
    return _load(HANDLERS[kind])


def warm_ups() -> list[tuple[str, Callable[[], Any]]]:
    """(name, function) of each warm-up whose module imports; one that does not is skipped, as the
    feature it speeds up is not installed either."""
    loaded = []
    for target in WARM_UPS:
        try:
            loaded.append((target, _load(target)))
        except ImportError:
            continue
    return loaded
