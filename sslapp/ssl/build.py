"""What a run trains: the SSL method around its initialised backbone, on the device, wrapped for DDP."""

from __future__ import annotations

from typing import Any

import torch

from sslapp.ssl import ddp
from sslapp.ssl.backbones import build_backbone
from sslapp.ssl.plan import PretrainConfig, PretrainError


def build_training_method(config: PretrainConfig, plan: dict[str, Any], device: torch.device,
                          dist: ddp.DistInfo, fresh: bool) -> torch.nn.Module:
    """The method around a new backbone, on `device`; a `fresh` run loads its initial weights first
    (ImageNet or a file, per `plan["init"]`), a resumed one gets its own from the checkpoint later."""
    from sslapp.ssl.methods import build_method

    cuda = device.type == "cuda"
    try:
        backbone = build_backbone(plan["backbone"], plan["train_size"])
        if fresh:
            from sslapp.ssl.weights import init_backbone

            init_backbone(backbone, plan.get("init", "scratch"))
    except ValueError as exc:  # includes WeightsError
        raise PretrainError(str(exc)) from exc
    try:
        method = build_method(config.method, backbone, **config.hparams)
    except (ValueError, TypeError) as exc:
        raise PretrainError(f"{config.method}: {exc}") from exc
    method.to(device)
    if cuda:
        method.to(memory_format=torch.channels_last)
    if dist.enabled and cuda:  # torch's SyncBatchNorm has no CPU kernel: gloo runs keep per-rank BN
        method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
    if config.compile:
        method.encoder.compile()
    return method


def wrap_ddp(method: torch.nn.Module, device: torch.device, dist: ddp.DistInfo) -> torch.nn.Module:
    """The module the loss is computed through: `method` itself, or DDP around it under torchrun."""
    if not dist.enabled:
        return method
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        method, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=bool(getattr(method, "ddp_find_unused_parameters", False)))
