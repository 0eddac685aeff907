"""Feature arrays: an encoder run over cache rows, and the npz files features are kept in.

Which encoder, and caching its features, is `sslapp.features.service`'s job; the cheap first-look
embedding is the modality's (`Modality.quick_features`, through `sslapp.features.items`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from sslapp.features.onnx_cpu import MIN_ROWS, Runner, onnx_runner
from sslapp.modalities import gather_rows
from sslapp.modalities.image import IMAGE

Progress = Callable[[int, int], None]


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def encoder_features(model, items: np.ndarray, rows: np.ndarray | None = None, batch_size: int = 256,
                     device: str | None = None, progress: Progress | None = None,
                     check_stop: Callable[[], None] | None = None,
                     to_input: Callable[[np.ndarray], np.ndarray] | None = None,
                     onnx_min_rows: int = MIN_ROWS) -> np.ndarray:
    """Run `model` over the cache rows `items[rows]`, batched, without grad: (N, D) float32.

    On a CPU, image batches of `onnx_min_rows` rows or more run through onnxruntime when the model
    exports and agrees with torch (`sslapp.features.onnx_cpu`): about three times as fast.

    `to_input` turns a batch of cache rows into the model's input (the workspace modality's
    `model_input`; default: images, uint8 (B, S, S, 3) -> float (B, 3, S, S) in [0, 1])."""
    import torch

    to_input = to_input or IMAGE.model_input
    device = device or default_device()
    model = model.to(device).eval()
    n = len(items) if rows is None else len(rows)
    out: np.ndarray | None = None
    runner: Runner | None = None
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            if check_stop:
                check_stop()
            stop = min(n, start + batch_size)
            batch = to_input(gather_rows(items, rows, start, stop))
            if start == 0 and device == "cpu" and batch.ndim == 4 and n >= onnx_min_rows:
                runner = onnx_runner(model, batch)
            if runner is not None:
                out = _put(out, n, start, stop, runner(batch))
                if progress:
                    progress(stop, n)
                continue
            x = torch.from_numpy(batch).to(device)
            if x.dim() == 4:  # image batches run channels-last, as they did when cast from the NHWC cache
                x = x.contiguous(memory_format=torch.channels_last)
            feats = model(x).float().cpu().numpy()
            out = _put(out, n, start, stop, feats)
            if progress:
                progress(stop, n)
    return out if out is not None else np.zeros((0, getattr(model, "dim", 0)), np.float32)


def warm_up() -> None:
    """Import torch, onnxruntime and the image backbones (2.5 s on 2 cores) while the worker is idle, so the
    first embedding after an upload does not wait for them."""
    import onnxruntime  # noqa: F401
    import torch  # noqa: F401

    import sslapp.models.backbones  # noqa: F401


def _put(out: np.ndarray | None, n: int, start: int, stop: int, feats: np.ndarray) -> np.ndarray:
    """Write one batch's features into the (n, D) result, made at the first batch."""
    if out is None:
        out = np.zeros((n, feats.shape[1]), np.float32)
    out[start:stop] = feats
    return out


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz atomically (temp file, then rename), never pickling objects. Streamed to the file:
    100,000 x 1,280 features held twice more in memory (a buffer and its bytes) cost 1 GB at the peak."""
    from sslapp.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
