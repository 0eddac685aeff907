"""Model writers: one torch module -> one ONNX, TorchScript or safetensors file.

They write into the exporter's private temporary folder (published as a whole by renaming it),
so they write plain files. Each turns a full disk into a plain OSError, which the CLI reports
as such: no writer may abort the process or hide the errno in another exception type.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import torch
from torch import nn

from sslapp import __version__
from sslapp.export.manifest import ONNX_INPUT
from sslapp.features.onnx_cpu import quiet
from sslapp.finetune.model import Classifier, save_classifier
from sslapp.models.encoder import Encoder, save_encoder

ONNX_OPSET = 18


def write_onnx(module: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], path: Path, output_name: str,
               input_names: tuple[str, ...] = (ONNX_INPUT,), axes: dict[str, str] | None = None) -> None:
    """Single-file ONNX with a dynamic batch dimension (legacy exporter; torch.export-based as fallback).

    `example`: one input tensor or a tuple of them, named `input_names`; `axes`: input name -> the name of
    its dynamic second axis (e.g. "tokens" for token ids), on top of the batch axis every input has."""
    import onnx

    examples = example if isinstance(example, tuple) else (example,)
    axes = axes or {}
    kwargs = dict(input_names=list(input_names), output_names=[output_name], opset_version=ONNX_OPSET)
    dynamic = {name: {0: "batch", **({1: axes[name]} if name in axes else {})} for name in input_names}
    with quiet():
        try:
            torch.onnx.export(module, examples, str(path), dynamo=False, do_constant_folding=True,
                              dynamic_axes={**dynamic, output_name: {0: "batch"}}, **kwargs)
        except OSError:  # a full disk is not the exporter's fault: no retry
            raise
        except Exception:  # the legacy exporter is gone or failed: use torch.export
            for leftover in path.parent.glob(path.name + "*"):
                leftover.unlink()
            dims = {"batch": torch.export.Dim("batch", min=1)}
            dims.update({a: torch.export.Dim(a, min=1) for a in set(axes.values())})
            shapes = tuple({i: dims[n] for i, n in dynamic[name].items()} for name in input_names)
            program = torch.onnx.export(module, examples, dynamo=True, external_data=False, verbose=False,
                                        dynamic_shapes=shapes, **kwargs)
            program.save(str(path), external_data=False)
    from onnx.external_data_helper import uses_external_data

    bare = onnx.load(str(path), load_external_data=False)
    external = {e.value for t in bare.graph.initializer if uses_external_data(t)
                for e in t.external_data if e.key == "location"}
    model = onnx.load(str(path))  # pulls in the external data, if any
    onnx.checker.check_model(model)
    if external:  # inline it: the export promises one self-contained file
        onnx.save_model(model, str(path), save_as_external_data=False)
        for location in external:
            (path.parent / location).unlink(missing_ok=True)


def write_torchscript(module: nn.Module, example: torch.Tensor, path: Path, extra: dict[str, str]) -> None:
    """Traced TorchScript with `extra` as files inside the archive (classes, input size)."""
    with quiet():
        traced = torch.jit.trace(module, (example,), check_trace=False)
        buffer = io.BytesIO()  # torch.jit.save to a path aborts the process on a full disk; Python raises
        torch.jit.save(traced, buffer, _extra_files={k: v.encode() for k, v in extra.items()})
    with open(path, "wb") as f:
        f.write(buffer.getbuffer())


@contextlib.contextmanager
def _io_errors_as_oserror():
    """safetensors reports a full disk as SafetensorError('... I/O error: ... (os error 28)'): make it OSError."""
    try:
        yield
    except OSError:
        raise
    except Exception as exc:
        found = re.search(r"I/O error: (.*) \(os error (\d+)\)", str(exc))
        if found is None:
            raise
        raise OSError(int(found.group(2)), found.group(1)) from exc


def write_safetensors(module: Classifier | Encoder, path: Path) -> None:
    """sslapp's own weights file (config and classes in the header; nothing pickled)."""
    with _io_errors_as_oserror():
        if isinstance(module, Classifier):
            save_classifier(module, path, {"sslapp_version": __version__})
        else:
            save_encoder(module, path, {"sslapp_version": __version__})
