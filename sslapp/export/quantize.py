"""Quantized copies of the ONNX classifier, smaller files for deployment: fp16 or int8.

- fp16: onnxruntime's float16 converter (`onnxruntime.transformers.float16`) with the float32 input
  and output kept, so callers feed the same array. Half the size, near-identical probabilities.
- int8: onnxruntime's static quantization (QDQ: int8 weights per output channel, uint8 activations)
  with percentile ranges calibrated on cached workspace images. A quarter of the size. Dynamic int8
  (`quantize_dynamic`) was measured and dropped: on a CIFAR-10 ResNet-18 it agreed about as well
  (99.7% vs 99.6% same class) but ran about 10x slower on CPU (ConvInteger), and on
  EfficientNet-Lite0 it kept the class on 57% of images (static: 79%, fp16: 100%); 300 CIFAR-10 images.

Neither can match the full model to 1e-4, so neither is held to that limit. Instead its agreement
with the app's float32 model (top-1 agreement, largest and mean absolute probability difference)
is measured on workspace images the calibration did not use, and recorded in model.json and the
model card; a poor int8 agreement is said out loud, with fp16 as the alternative.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sslapp.export import verify
from sslapp.export.manifest import (
    GOOD_QUANTIZED_AGREEMENT,
    ONNX_INPUT,
    ONNX_OUTPUT,
    QUANTIZED_FILES,
    ExportError,
)
from sslapp.export.writers import quiet, write_onnx

CALIBRATION_IMAGES = 64
CHECK_IMAGES = 256
POOL = CALIBRATION_IMAGES + CHECK_IMAGES  # images asked of the cache: every 5th calibrates, the rest check
MIN_SPLIT = 40  # fewer images than this: all of them calibrate and check (model.json says so)
METHODS = {
    "fp16": "float16 weights and arithmetic, float32 input and output (onnxruntime float16 converter)",
    "int8": "static int8 (QDQ): per-channel int8 weights, uint8 activations, percentile calibration on "
            "workspace images (onnxruntime.quantization.quantize_static)",
}


def split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(calibration rows, check rows) of `n` images; disjoint unless there are fewer than MIN_SPLIT."""
    rows = np.arange(n)
    if n < MIN_SPLIT:
        return rows, rows
    calibration = rows[::5][:CALIBRATION_IMAGES]
    return calibration, np.setdiff1d(rows, calibration)[:CHECK_IMAGES]


def agreement(reference: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    """How closely quantized class probabilities follow the float32 ones, image by image."""
    diff = np.abs(got.astype(np.float64) - reference)
    if not np.isfinite(diff).all():
        raise ExportError("the quantized model gives non-finite probabilities; export without --quantize, "
                          "or try the other --quantize choice.")
    return {"n_images": int(len(reference)),
            "top1_agreement": round(float((got.argmax(1) == reference.argmax(1)).mean()), 4),
            "max_abs_prob_diff": round(float(diff.max()), 6), "mean_abs_prob_diff": round(float(diff.mean()), 6)}


def _fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with quiet():
        onnx.save_model(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dst))


def _int8(src: Path, dst: Path, calibration: np.ndarray, scratch: Path) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            # one image per run: the percentile calibrator stacks the runs' outputs, so their shapes must agree
            self.batches = iter([{ONNX_INPUT: calibration[i:i + 1]} for i in range(len(calibration))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    prepared = scratch / "prepared.onnx"  # shape inference and graph optimisation, as onnxruntime advises
    quiet_logs = logging.getLogger()
    level = quiet_logs.level
    quiet_logs.setLevel(logging.ERROR)  # the quantizer logs its advice to the root logger
    try:
        with quiet(), contextlib.redirect_stdout(sys.stderr):  # its progress prints would corrupt --json
            # the exported graph defeats symbolic shape inference (Expand); onnx's own inference suffices
            quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.Percentile)
    finally:
        quiet_logs.setLevel(level)


def write_quantized(model: nn.Module, how: str, fp32_onnx: Path | None, dst: Path, inputs: verify.CheckInputs,
                    say: Callable[[str], None]) -> dict[str, Any]:
    """Write the `how` (fp16 or int8) copy of the classifier's ONNX at `dst`; returns its model.json entry.

    `fp32_onnx` is the export's checked float32 ONNX; None: one is written and checked in a scratch
    folder beside `dst` and removed afterwards (a quantized model exported without the full one).
    `inputs`: cached images (up to POOL) to calibrate on and to measure the agreement on.
    """
    x = inputs.x.numpy()
    calibration, check = split(len(x))
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quantize-") as scratch:
        if fp32_onnx is None:
            fp32_onnx = Path(scratch) / "classifier.onnx"
            write_onnx(model, inputs.x[:2], fp32_onnx, ONNX_OUTPUT["classifier"])
            diff = verify.max_abs_diff("onnx", "classifier", fp32_onnx, inputs.x[:3],
                                       verify.reference_output(model, inputs.x[:3]))
            verify.require_faithful("the float32 ONNX classifier", diff)
        if how == "fp16":
            _fp16(fp32_onnx, dst)
        elif how == "int8":
            _int8(fp32_onnx, dst, x[calibration], Path(scratch))
        else:
            raise ExportError(f"unknown --quantize {how!r}; choose from {', '.join(QUANTIZED_FILES)}.")
        fp32_bytes = fp32_onnx.stat().st_size
    reference = verify.reference_output(model, torch.from_numpy(x[check]))
    agree = agreement(reference, verify.run_onnx(dst, x[check]))
    entry = {"type": how, "file": dst.name, "method": METHODS[how], "bytes": dst.stat().st_size,
             "fp32_bytes": fp32_bytes, "compared_with": "the app's float32 model",
             "inputs": inputs.source, "note": inputs.note, **agree}
    if how == "int8":
        entry["calibration_images"] = int(len(calibration))
        entry["calibration_images_checked_too"] = len(calibration) == len(x)
    if agree["top1_agreement"] < GOOD_QUANTIZED_AGREEMENT:
        say(f"warning: the {how} model keeps the top class on only {100 * agree['top1_agreement']:.1f}% of "
            f"{agree['n_images']} images (max probability difference {agree['max_abs_prob_diff']:.3f}); "
            "prefer " + ("--quantize fp16 or " if how == "int8" else "") + "the full classifier.onnx.")
    return entry
