"""Distributed data parallel under `torchrun`: process group, rank helpers, flag agreement.

`sslapp pretrain` detects torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK). Every rank
trains on its own shard of the epoch permutation; gradients are averaged by
DistributedDataParallel, BatchNorm is synchronised on CUDA (torch's SyncBatchNorm has no CPU
kernel, so CPU/gloo runs keep per-rank BN), lightly's losses gather embeddings across ranks,
and only rank 0 touches the database and writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def torchrun_env() -> DistInfo | None:
    """The torchrun layout of this process, or None when not launched by torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    return DistInfo(rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]),
                    local_rank=int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))


def init_distributed(device: str = "auto") -> DistInfo:
    """Join torchrun's process group (nccl on CUDA, gloo on CPU); a no-op outside torchrun."""
    info = torchrun_env()
    if info is None or info.world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


def current() -> DistInfo:
    """The layout of the running process group (a single process when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        return DistInfo(rank=rank, world_size=dist.get_world_size(),
                        local_rank=int(os.environ.get("LOCAL_RANK", rank)))
    return DistInfo()


def agree_max(values: list[float], device: torch.device) -> list[float]:
    """Element-wise max over ranks: a stop, time-up or NaN flag raised on any rank holds on all."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def broadcast_object(obj, src: int = 0):
    """Send a small python object (a checkpoint path, a config) from rank `src` to every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
