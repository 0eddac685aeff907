"""What every text SSL method gives the loop: steps on rows of the texts, its state as plain tensors, and
its current weights as a text encoder (`sslapp.models.text`), which the app embeds with like any other.

    method = Word2VecSIF(texts, seed=0, threads=2)       # reads the texts once (vocabulary, word pieces)
    for rows in batches:                                  # indices into `texts`
        loss = method.step(rows, start, end)              # the run's progress before and after: lr schedules
    encoder = method.encoder(epoch)                       # a TextEncoder, saved as the run's encoder file
    state = method.state_dict()                           # tensors, lists and numbers: no pickles (ssl.checkpoint)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from sslapp.models.text.base import TextEncoder


class TextSSLMethod:
    """Base class: subclasses set `name`, `backbone`, `init` and `defaults` (every hyperparameter, including
    `batch_size`, texts per step) and implement the methods below. Unknown hyperparameters are refused."""

    name: ClassVar[str] = ""
    backbone: ClassVar[str] = ""  # what the run trains, in its name ("all-MiniLM-L6-v2", "word2vec-sif")
    init: ClassVar[str] = "scratch"  # what it starts from ("minilm": the shipped model)
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, texts: list[str], seed: int = 0, threads: int | None = None, **hparams: Any):
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) for {self.name}: {', '.join(unknown)}; "
                             f"accepted: {', '.join(sorted(self.defaults)) or 'none'}")
        self.hparams: dict[str, Any] = {**self.defaults, **hparams}
        self.n, self.seed, self.threads = len(texts), int(seed), threads

    @property
    def batch_size(self) -> int:
        return int(self.hparams["batch_size"])

    def max_epochs(self) -> int | None:
        """Epochs past which more time buys nothing (a minutes budget stops there); None: no such cap."""
        return None

    def step(self, rows: np.ndarray, start: float, end: float) -> float:
        """Train on the texts at `rows`; `start`/`end` are the run's progress (0-1) before and after this
        step, for the method's learning-rate schedule. Returns the step's loss."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def encoder(self, epoch: int) -> TextEncoder:
        """The current weights as a text encoder in eval mode (the next `step` trains again)."""
        raise NotImplementedError
