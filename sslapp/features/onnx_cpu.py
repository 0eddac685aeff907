"""Image encoders run through onnxruntime on a CPU: the same features (to 1e-5) at 3-4 times torch's speed.

EfficientNet-Lite0 at 128 px on two cores embeds 446 images a second through onnxruntime against 78-135
through torch, and about 320 a second in the app's whole step (docs/benchmarks.md, issue 23): what makes
100,000 images fit in minutes. The module is exported in memory (about 1 s), never written, and checked against torch on the
first rows before it is trusted; a module the exporter cannot take (the patch dictionary's adaptive
pooling) or whose outputs differ stays on torch.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator

import numpy as np

log = logging.getLogger(__name__)

# Below this many rows the export (about 1 s) costs more than it saves.
MIN_ROWS = 2048
CHECK_ROWS = 8
# Rows per onnxruntime call: its memory arena grows to the largest call, and small calls are faster too
# (EfficientNet-Lite0 at 128 px on 2 cores: 446 images/s and 1.1 GB peak at 32 rows, 394 and 2.7 GB at 256).
ROWS_PER_RUN = 32
# float32 features of unit-scale inputs: the two runtimes agree to about 1e-5.
TOLERANCE = 1e-3

Runner = Callable[[np.ndarray], np.ndarray]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the ONNX exporters' deprecation and tracer chatter; failures still raise. What they print (the
    legacy exporter prints a whole Torch IR graph when it gives up) goes to stderr: stdout is for `--json`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def onnx_runner(model, example: np.ndarray) -> Runner | None:
    """A function (B, C, H, W) float32 -> (B, D) features that runs `model` in onnxruntime, or None
    when onnxruntime is missing, the export fails or its features differ from torch's on `example`."""
    import torch

    try:
        import onnxruntime as ort
    except ImportError:
        return None
    check = np.ascontiguousarray(example[:CHECK_ROWS], dtype=np.float32)
    buffer = io.BytesIO()
    try:
        with quiet(), torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(model, (torch.from_numpy(check),), buffer, input_names=["x"], output_names=["features"],
                              dynamic_axes={"x": {0: "batch"}, "features": {0: "batch"}}, opset_version=18,
                              dynamo=False, do_constant_folding=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        got = session.run(None, {"x": check})[0]
        with torch.inference_mode():
            want = model(torch.from_numpy(check)).float().numpy()
    except Exception as exc:  # an operator the exporter or runtime lacks: torch computes these features
        log.info("features stay on torch (%s: %s)", type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
        return None
    if got.shape != want.shape or not np.allclose(got, want, rtol=TOLERANCE, atol=TOLERANCE):
        log.warning("onnxruntime's features differ from torch's (max %.2e); features stay on torch",
                    float(np.abs(got - want).max()) if got.shape == want.shape else float("nan"))
        return None

    def run(x: np.ndarray) -> np.ndarray:
        return np.concatenate([session.run(None, {"x": np.ascontiguousarray(x[i:i + ROWS_PER_RUN], dtype=np.float32)})[0]
                               for i in range(0, len(x), ROWS_PER_RUN)])

    return run
