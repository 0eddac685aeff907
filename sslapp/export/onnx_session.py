"""One way to open an ONNX model on onnxruntime's CPU provider, with a thread count that respects the cap."""

from __future__ import annotations

import os
from pathlib import Path


def cap_from_environment() -> int | None:
    """OMP_NUM_THREADS as a positive int, else None: the cap people and CI set for every CPU thread pool,
    which torch and BLAS read and onnxruntime does not (its threads would spin beside a busy process)."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def cpu_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime session on `path`: `threads` intra-op threads, else the environment's cap, else
    onnxruntime's default (one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    threads = threads or cap_from_environment()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(Path(path)), sess_options=options, providers=["CPUExecutionProvider"])
