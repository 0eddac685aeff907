"""UMAP with numba's on-disk cache: each process compiles UMAP's code once per install, not once per start.

umap-learn compiles its numba functions without `cache=True`, so every new worker (and every `sslapp`
command that draws a map or clusters) spent about 6 s of CPU compiling the same code before its first
fit. Turning numba's cache on for those functions before their first call keeps the machine code
in `__pycache__` beside umap's sources (or numba's user cache folder where that is read-only); a later
process loads it in a fraction of a second. numba keys each entry by the source file's timestamp and
size and by the CPU, so an upgrade or another machine just compiles again.
"""

from __future__ import annotations

import importlib
from types import ModuleType

UMAP_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral", "umap.distances", "umap.sparse",
                # NN-descent, the neighbour search above 20,000 items: half its functions have no cache of their
                # own; with one, a new process compiles it in 10 s instead of 23 (its core cannot be cached)
                "pynndescent.pynndescent_", "pynndescent.utils", "pynndescent.rp_trees", "pynndescent.distances")

_done = False


def enable_caching(module: ModuleType) -> int:
    """Turn numba's on-disk cache on for every jitted function of `module` not yet compiled; how many."""
    from numba.core.registry import CPUDispatcher

    count = 0
    for value in vars(module).values():
        if isinstance(value, CPUDispatcher) and not value.signatures and value._cache.__class__.__name__ == "NullCache":
            try:
                value.enable_caching()
            except RuntimeError:  # no writable cache folder anywhere: compile in memory, as umap does
                continue
            count += 1
    return count


def import_umap() -> ModuleType:
    """`import umap`, with numba's cache on for its functions (once per process)."""
    global _done
    import umap

    if not _done:
        for name in UMAP_MODULES:
            enable_caching(importlib.import_module(name))
        _done = True
    return umap
