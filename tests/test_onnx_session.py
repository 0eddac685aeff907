"""onnxruntime's thread pool follows the caller's count, else OMP_NUM_THREADS (which it does not read itself)."""

from __future__ import annotations

import pytest
import torch

from sslapp.export.onnx_session import cap_from_environment, cpu_session


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "linear.onnx"
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.zeros(1, 3),), str(path), dynamo=False, input_names=["x"])
    return path


def test_threads_come_from_the_caller_then_omp_num_threads(tiny_onnx, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cap_from_environment() == 1
    assert cpu_session(tiny_onnx).get_session_options().intra_op_num_threads == 1
    assert cpu_session(tiny_onnx, threads=2).get_session_options().intra_op_num_threads == 2
    for unset in ("", "0", "many"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert cap_from_environment() is None
        assert cpu_session(tiny_onnx).get_session_options().intra_op_num_threads == 0  # onnxruntime's own default
