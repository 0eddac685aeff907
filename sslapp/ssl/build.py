"""What a run trains: the SSL method around its initialised backbone, on the device, wrapped for DDP."""

from __future__ import annotations

from typing import Any

import torch

from sslapp.models.backbones import build_backbone
from sslapp.ssl import ddp
from sslapp.ssl.plan import PretrainConfig, PretrainError

PATCH_INIT_IMAGES = 2000  # images a first layer "from patches" is fitted on (a few seconds on a CPU)


def build_training_method(config: PretrainConfig, plan: dict[str, Any], device: torch.device,
                          dist: ddp.DistInfo, fresh: bool, images: Any = None) -> torch.nn.Module:
    """The method around a new backbone, on `device`; a `fresh` run loads its initial weights first
    (ImageNet, a file or a patch dictionary of `images`, the uint8 training images, per
    `plan["init"]`), a resumed one gets its own from the checkpoint later."""
    from sslapp.ssl.methods import build_method

    cuda = device.type == "cuda"
    try:
        backbone = build_backbone(plan["backbone"], plan["train_size"])
        if fresh:
            from sslapp.models.weights import init_backbone

            init = plan.get("init", "scratch")
            sample = _init_sample(images, plan["train_size"], config.seed) if init == "patches" else None
            init_backbone(backbone, init, sample)
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


def _init_sample(images: Any, size: int, seed: int) -> torch.Tensor:
    """Up to PATCH_INIT_IMAGES of the uint8 (N, S, S, 3) images (or sounds' (N, M, T) log-mel pictures) as
    the network sees them: normalised, at `size` px."""
    import numpy as np
    import torch.nn.functional as F

    from sslapp.models.normalise import imagenet_normalise
    from sslapp.ssl.augment import as_rgb_rows, to_float_images

    if images is None or len(images) == 0:
        raise PretrainError("a first layer from patches needs images")
    rows = np.sort(np.random.default_rng(seed).permutation(len(images))[:PATCH_INIT_IMAGES])
    x = to_float_images(as_rgb_rows(torch.from_numpy(np.ascontiguousarray(images[rows]))))
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return imagenet_normalise(x)


def wrap_ddp(method: torch.nn.Module, device: torch.device, dist: ddp.DistInfo) -> torch.nn.Module:
    """The module the loss is computed through: `method` itself, or DDP around it under torchrun."""
    if not dist.enabled:
        return method
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        method, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=bool(getattr(method, "ddp_find_unused_parameters", False)))
