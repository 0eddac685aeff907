"""Verification: every exported model file is loaded back and run against the app's torch model.

The inputs are real cached items of the workspace (what the model sees in the app: images, or
sounds' log-mel pictures). When the cache cannot supply them, random noise is used instead, and the
result says so (model.json, the model card and the progress log): noise checks the arithmetic, not
the items the model is for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sslapp.export.manifest import ONNX_INPUT, ExportError
from sslapp.export.writers import quiet
from sslapp.modalities import workspace_modality
from sslapp.workspace import Workspace

MAX_ABS_DIFF = 1e-4
N_EXAMPLES = 3
BATCH = 32
log = logging.getLogger(__name__)


@dataclass
class CheckInputs:
    """The batch the exported files are checked on, and what it is."""

    x: torch.Tensor  # float32 (n, 3, S, S) in [0, 1]
    source: str  # "workspace images" (or "workspace sounds") or "random noise"
    note: str | None = None  # why noise was used


def check_inputs(ws: Workspace, size: int, n: int = N_EXAMPLES) -> CheckInputs:
    """Up to `n` cached items spread over the workspace (all of them when it has fewer), as the model reads
    them (the modality's `model_input`: an image, a sound's log-mel picture), or `n` inputs of seeded
    noise with the reason the cache was not used."""
    modality = workspace_modality(ws)
    try:
        from sslapp.ingest.cache import read_cache

        cache = read_cache(ws)
        if not len(cache):
            note = f"the workspace has no cached {modality.plural}"
        else:
            rows = np.asarray(cache[np.linspace(0, len(cache) - 1, min(n, len(cache))).astype(int)])
            x = modality.model_input(rows)
            if x.shape[-2:] == (size, size):
                return CheckInputs(torch.from_numpy(x), f"workspace {modality.plural}")
            note = (f"the cache gives {x.shape[-2]} x {x.shape[-1]} px inputs but the model takes {size} x "
                    f"{size} px")
    except Exception as exc:  # a damaged cache must not block an export, but the result must say so
        note = f"the {modality.noun} cache could not be read ({exc.__class__.__name__}: {exc})"
    log.warning("export check uses random noise: %s", note)
    return CheckInputs(torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)),
                       "random noise", note)


def reference_output(module: nn.Module, x: torch.Tensor, batch: int = BATCH) -> np.ndarray:
    with torch.inference_mode():
        return np.concatenate([module(x[i:i + batch]).numpy() for i in range(0, len(x), batch)])


def run_onnx(path: Path, x: torch.Tensor | np.ndarray, batch: int = BATCH) -> np.ndarray:
    """The ONNX model's outputs on `x`, in batches, on onnxruntime's CPU provider."""
    from sslapp.export.onnx_session import cpu_session

    x = x.numpy() if isinstance(x, torch.Tensor) else x
    session = cpu_session(path)
    return np.concatenate([session.run(None, {ONNX_INPUT: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def _run_torchscript(path: Path, x: torch.Tensor) -> np.ndarray:
    with quiet():  # only the file this export has just written is loaded, never a user's
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return loaded(x).numpy()


def _run_safetensors(path: Path, x: torch.Tensor, part: str) -> np.ndarray:
    from sslapp.finetune.model import load_classifier
    from sslapp.models.encoder import load_encoder

    model = load_classifier(path) if part == "classifier" else load_encoder(path)
    with torch.inference_mode():
        return model.eval()(x).numpy()


def max_abs_diff(fmt: str, part: str, path: Path, x: torch.Tensor, expected: np.ndarray) -> float:
    """Largest absolute difference between the file's outputs on `x` and the torch model's."""
    if fmt == "onnx":
        got = run_onnx(path, x)
    elif fmt == "torchscript":
        got = _run_torchscript(path, x)
    elif fmt == "safetensors":
        got = _run_safetensors(path, x, part)
    else:
        raise ValueError(f"no check for format {fmt!r}")
    return float(np.abs(got - expected).max())


def require_faithful(name: str, diff: float) -> None:
    if not diff <= MAX_ABS_DIFF:  # NaN fails too
        raise ExportError(f"{name} disagrees with the torch model by {diff:.2e} (limit {MAX_ABS_DIFF:g}); "
                          "this backbone does not export faithfully. Please report it.")


def summary(source: str, n: int, note: str | None, diffs: dict[str, float]) -> dict[str, Any]:
    """The `verification` entry of model.json: `n` inputs from `source` (e.g. "workspace images"), `note`
    why not the workspace's own items, and each file's largest difference."""
    return {"inputs": source, "n_inputs": int(n), "note": note, "limit": MAX_ABS_DIFF, "max_abs_diff": diffs}
