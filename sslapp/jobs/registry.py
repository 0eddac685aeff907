"""Job kinds and the handler that runs each, plus idle-time warm-ups; all imported lazily in the worker.

The worker knows only these "module:function" targets, never a feature package, so adding a job kind
or a warm-up is one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sslapp.registry import Entry, Registry

# kind -> its handler; each takes a JobContext and returns a JSON-able result dict. defaults: the
# params a job runs with unless its enqueue says otherwise.
JOBS = Registry("job kind", [
    Entry("ingest", "add files to the workspace, then queue the first map", "sslapp.ingest.job:run_ingest_job"),
    Entry("pretrain", "self-supervised pretraining of an encoder on the workspace's items",
          "sslapp.ssl.job:run_pretrain_job"),
    Entry("embed", "the chosen embedding, its 2-D map and clusters", "sslapp.maps.job:run_embed_job",
          {"clusters": "kmeans", "k": None, "provisional": False}),
    Entry("add_model", "a text model folder the user brings, checked, copied and added as an encoder",
          "sslapp.features.local_model:run_add_model_job", {"name": None, "use": False, "map": False}),
    Entry("suggest", "the next items to label, each with its reason", "sslapp.select.job:run_suggest_job",
          {"budget": 20, "strategy": "auto"}),
    Entry("finetune", "a classifier on the labels, with honest estimates", "sslapp.finetune.job:run_finetune_job"),
    Entry("review", "labels most likely wrong, most suspicious first", "sslapp.curate.review_job:run_review_job"),
    Entry("near_duplicates", "groups of near-identical items", "sslapp.curate.duplicates_job:run_near_duplicates_job"),
    Entry("export", "the classifier as ONNX and safetensors, with its model card", "sslapp.export.job:run_export_job"),
    Entry("sleep", "waits (tests and the worker's own checks)", "sslapp.jobs.builtin:run_sleep_job"),
])

# "module:function" with no arguments, run once by an idle worker, e.g. compiling numba code so the
# first job that needs it starts fast. A failure is logged, never raised.
WARM_UPS: list[str] = ["sslapp.maps.umap_map:warm_up", "sslapp.select.typiclust:warm_up",
                       "sslapp.features.extract:warm_up", "sslapp.maps.umap_map:warm_up_large_sets"]
# compiled code numba can keep on disk: setup runs these once, so test processes load them
CACHED_WARM_UPS: list[str] = WARM_UPS[:2]


def _load(target: str) -> Callable[..., Any]:
    return Entry(target, "", target).load()


def handler_for(kind: str) -> Callable[[Any], dict[str, Any]]:
    if kind not in JOBS:
        raise KeyError(f"Unknown job kind {kind!r}; known kinds: {', '.join(sorted(JOBS))}.")
    return JOBS[kind].load()


def warm_ups(targets: list[str] | None = None) -> list[tuple[str, Callable[[], Any]]]:
    """(name, function) of each warm-up (of `targets`, default all) whose module imports; one that does
    not is skipped, as the feature it speeds up is not installed either."""
    loaded = []
    for target in WARM_UPS if targets is None else targets:
        try:
            loaded.append((target, _load(target)))
        except ImportError:
            continue
    return loaded
