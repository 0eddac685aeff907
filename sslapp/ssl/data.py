"""The images a run trains on: the cache rows, where they live (RAM, memmap or GPU) and each epoch's order.

The hot loop never touches PIL or DataLoader workers: an epoch is a seeded permutation of the
cache rows, and a batch is one fancy-index into the (RAM- or GPU-resident) uint8 array, moved to
the device in one copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sslapp.ssl import ddp
from sslapp.ssl.plan import PretrainError
from sslapp.workspace import Workspace

RESIDENT_RAM_BYTES = 4 * 1024 ** 3  # copy the cache rows into RAM below this size


def load_images(ws: Workspace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 images to train on, their cache rows, their item ids) for every active item."""
    from sslapp.ingest.cache import read_cache

    pairs = ws.store.item_ids_and_cache_index()
    ids = np.array([p[0] for p in pairs], dtype=np.int64)
    rows = np.array([p[1] for p in pairs], dtype=np.int64)
    cache = read_cache(ws)
    if len(rows) and rows.max() >= len(cache):
        raise PretrainError("the image cache is shorter than the item list; re-ingest into a new workspace.")
    if len(rows) * int(np.prod(cache.shape[1:])) <= RESIDENT_RAM_BYTES:
        images = np.ascontiguousarray(cache[rows]) if len(rows) else np.asarray(cache[:0])
    else:  # too big for RAM: stay on the memmap and read each batch's rows from it
        images = _RowView(cache, rows)
    return images, rows, ids


class _RowView:
    """The subset `rows` of a memmap, indexed like an array (batches read sorted rows)."""

    def __init__(self, cache: np.ndarray, rows: np.ndarray):
        self.cache, self.rows = cache, rows
        self.shape = (len(rows), *cache.shape[1:])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx):
        return self.cache[self.rows[idx]]


def resident_on_device(images: Any, device: torch.device) -> torch.Tensor | None:
    """The whole image array on the GPU when it takes under a fifth of the free memory, else None."""
    if device.type == "cuda" and isinstance(images, np.ndarray):
        free, _ = torch.cuda.mem_get_info(device)
        if images.nbytes < 0.2 * free:  # the whole cache on the GPU: batches never cross PCIe
            return torch.from_numpy(images).to(device)
    return None


def epoch_permutation(n: int, seed: int, epoch: int, dist: ddp.DistInfo) -> torch.Tensor:
    """The seeded order of the `n` images in `epoch`; under DDP this rank's equal-length shard of it."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g)
    if dist.enabled:
        per = n // dist.world_size
        perm = perm[dist.rank * per:(dist.rank + 1) * per]
    return perm


def fetch_batch(images: Any, resident: torch.Tensor | None, idx: torch.Tensor,
                device: torch.device) -> torch.Tensor:
    """The uint8 images at positions `idx`, on `device` (one copy; memmap rows read in sorted order)."""
    if resident is not None:
        return resident[idx.to(device, non_blocking=True)]
    rows = np.sort(idx.numpy())
    x = torch.from_numpy(np.ascontiguousarray(images[rows]))
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x
