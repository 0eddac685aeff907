"""UMAP's numba code is cached on disk (sslapp/numba_cache.py), so a new worker does not compile it again."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sslapp.maps.umap_map import fit_map
from sslapp.numba_cache import UMAP_MODULES, import_umap


def test_umap_functions_use_the_disk_cache_and_a_fit_reads_or_writes_it():
    import importlib

    from numba.core.registry import CPUDispatcher

    import_umap()
    dispatchers = [v for name in UMAP_MODULES for v in vars(importlib.import_module(name)).values()
                   if isinstance(v, CPUDispatcher)]
    assert len(dispatchers) > 10
    # those compiled before import_umap (signatures given in the decorator) keep numba's own choice
    uncached = [d.py_func.__qualname__ for d in dispatchers
                if type(d._cache).__name__ == "NullCache" and not d.signatures]
    assert not uncached, uncached

    xy, method = fit_map(np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32))
    assert method == "umap" and xy.shape == (60, 2) and np.isfinite(xy).all()
    import umap.layouts

    layout = umap.layouts._nb_optimize_layout_euclidean_single_epoch
    assert sum(layout.stats.cache_hits.values()) + sum(layout.stats.cache_misses.values()) >= 1
    index = list(Path(layout.stats.cache_path).glob("layouts._optimize_layout_euclidean_single_epoch-*.nbi"))
    assert index, f"no numba cache index under {layout.stats.cache_path}"
