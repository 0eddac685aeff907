"""The one row-wise L2 normalisation of embeddings, in numpy (no torch, no sklearn: cheap to import).

The probe, propagation, selection, the map and clustering all compare embeddings by direction;
writing the step once keeps its zero-row rule (eps) the same everywhere.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike


def l2_normalize(features: np.ndarray, eps: float = 1e-12, *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """Rows scaled to unit length, computed and returned in `dtype`; zero rows stay zero.

    Matches torch.nn.functional.normalize(eps=1e-12). float64 by default (the probe's precision);
    the map, clustering and selection pass float32 to keep their memory and outputs as they were.
    """
    features = np.asarray(features, dtype=dtype)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, eps)
