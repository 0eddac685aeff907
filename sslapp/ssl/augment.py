"""Batched view generation on the training device with kornia: no per-image PIL in the hot loop.

`make_views(batch, spec, seed)` turns one cache batch (uint8 (B, S, S, 3) straight from the memmap,
or floats (B, 3, S, S) in [0, 1]) into the list of normalised views a method's `ViewSpec` asks for:
random resized crop, horizontal flip, colour jitter (0.4, 0.4, 0.2, 0.1, p=0.8), grayscale (p=0.2),
Gaussian blur and solarize with per-view probabilities, then ImageNet normalisation. With a seed the
views depend only on (batch, spec, seed), so a resumed run sees the same views as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache

import kornia.augmentation as K
import torch
from torch import Tensor, nn

from sslapp.ssl.encoder import IMAGENET_MEAN, IMAGENET_STD
from sslapp.ssl.methods.base import ViewSpec


def blur_kernel_size(size: int) -> int:
    """Odd kernel of about 10% of the crop side, as in SimCLR."""
    return max(3, int(0.1 * size) // 2 * 2 + 1)


def _pipeline(size: int, scale: tuple[float, float], spec: ViewSpec, blur_p: float, solarize_p: float) -> nn.Module:
    ops: list[nn.Module] = [K.RandomResizedCrop((size, size), scale=scale, cropping_mode="resample")]
    if spec.flip:
        ops.append(K.RandomHorizontalFlip())
    if spec.color:
        s = spec.color_strength
        ops += [K.ColorJitter(0.4 * s, 0.4 * s, 0.2 * s, 0.1 * s, p=0.8), K.RandomGrayscale(p=0.2)]
    if blur_p > 0:
        ops.append(K.RandomGaussianBlur(blur_kernel_size(size), (0.1, 2.0), p=blur_p))
    if solarize_p > 0:
        ops.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=solarize_p))
    ops.append(K.Normalize(mean=torch.tensor(IMAGENET_MEAN), std=torch.tensor(IMAGENET_STD)))
    return nn.Sequential(*ops)


@lru_cache(maxsize=32)
def _pipelines(spec: ViewSpec) -> tuple[nn.Module, ...]:
    def prob(probs: tuple[float, ...], i: int) -> float:
        return probs[min(i, len(probs) - 1)] if probs else 0.0

    globals_ = [_pipeline(spec.global_size, spec.global_scale, spec, prob(spec.blur, i), prob(spec.solarize, i))
                for i in range(spec.n_global)]
    locals_ = [_pipeline(spec.local_size, spec.local_scale, spec, spec.local_blur, 0.0)] * spec.n_local if spec.n_local else []
    return tuple(globals_ + locals_)


def to_float_images(batch: Tensor) -> Tensor:
    """uint8 (B, S, S, 3) or float (B, 3, S, S) in [0, 1] -> contiguous float (B, 3, S, S) in [0, 1]."""
    if batch.ndim != 4:
        raise ValueError(f"expected a batch of images with 4 dimensions, got shape {tuple(batch.shape)}")
    if batch.dtype == torch.uint8:
        if batch.shape[-1] != 3:
            raise ValueError(f"uint8 batches must be (B, S, S, 3), got {tuple(batch.shape)}")
        return batch.permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    if not batch.is_floating_point() or batch.shape[1] != 3:
        raise ValueError(f"float batches must be (B, 3, S, S) in [0, 1], got {batch.dtype} {tuple(batch.shape)}")
    return batch.float().contiguous()


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    if seed is None:
        yield
        return
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type=device.type if cuda else "cuda"):
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.manual_seed(seed)
        yield


@torch.no_grad()
def make_views(batch: Tensor, spec: ViewSpec, seed: int | None = None) -> list[Tensor]:
    """The views `spec` describes for `batch`, on the batch's device: globals first, then locals.

    Each view is an independently augmented float (B, 3, size, size) tensor, normalised with the
    ImageNet mean and std. `seed` makes the result reproducible without touching the global RNG.
    """
    images = to_float_images(batch)
    pipes = _pipelines(spec)
    with _seeded(seed, images.device):
        return [pipe.to(images.device)(images) for pipe in pipes]
