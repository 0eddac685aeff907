"""Unsupervised SimCSE (Gao, Yao and Chen, EMNLP 2021), continued from the shipped all-MiniLM-L6-v2 on the
user's texts: each text goes through the network twice, and dropout alone makes the two views; lightly's
NT-Xent loss pulls a text's two vectors together and pushes the other texts' apart.

The paper's unsupervised recipe (batch 64, AdamW with linear decay, temperature 0.05, texts cut at 32 word
pieces, dropout 0.1, MiniLM's own) with two changes for a model already trained on sentence pairs: a
learning rate of 1e-5 instead of 3e-5, and at most MAX_EPOCHS passes. On banking77's 3,079 test texts one
epoch at 3e-5 cost 10-NN accuracy 0.851 -> 0.795 and a 2-per-intent probe 0.668 -> 0.556; at 1e-5 0.847
and 0.639; 17 epochs on 399 texts cost 0.99 -> 0.73 at 20 labels (docs/benchmarks.md). The app keeps the
frozen model unless the tuned one measures better on the user's labels. The vectors trained are the ones the app uses:
mean pooling over the attention mask, unit length (the paper pools [CLS] through an MLP while training).
The encoder is MiniLM with these weights (`MiniLM(state=..., tuned=...)`): its file holds them, and the
export is MiniLM's, tokenizer and all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sslapp.models.text.minilm import MiniLM
from sslapp.models.text.tokens import pad_ids
from sslapp.ssl.text.base import TextSSLMethod

MAX_EPOCHS = 3  # the paper trains one pass; more passes over a small corpus drift further from MiniLM


class SimCSE(TextSSLMethod):
    name = "simcse"
    backbone = "all-MiniLM-L6-v2"
    init = "minilm"
    defaults = {"batch_size": 64, "lr": 1e-5, "temperature": 0.05, "max_tokens": 32}

    def __init__(self, texts: list[str], seed: int = 0, threads: int | None = None, **hparams: Any):
        super().__init__(texts, seed, threads, **hparams)
        from lightly.loss import NTXentLoss

        from sslapp.models.text.minilm import TOKENIZER
        from sslapp.models.text.tokens import load_tokenizer

        torch.manual_seed(self.seed)
        self.model = MiniLM()  # the shipped weights, hash-checked
        tokenizer = load_tokenizer(self.model.folder / TOKENIZER, int(self.hparams["max_tokens"]))
        self.ids = [e.ids for e in tokenizer.encode_batch([t.strip() for t in texts])]
        self.loss_fn = NTXentLoss(temperature=float(self.hparams["temperature"]), gather_distributed=False)
        self.optimizer = torch.optim.AdamW(self.model.vectors.parameters(), lr=float(self.hparams["lr"]),
                                           weight_decay=0.0)

    def max_epochs(self) -> int:
        return MAX_EPOCHS

    def step(self, rows: np.ndarray, start: float, end: float) -> float:
        if len(rows) < 2:  # NT-Xent needs another text in the batch
            return 0.0
        ids, mask = pad_ids([self.ids[i] for i in rows] * 2)  # the same texts twice: dropout makes two views
        ids_t, mask = torch.from_numpy(ids), torch.from_numpy(mask)
        for group in self.optimizer.param_groups:
            group["lr"] = float(self.hparams["lr"]) * max(0.0, 1.0 - start)
        self.model.vectors.train()
        z = self.model.vectors(ids_t, mask)
        loss = self.loss_fn(z[:len(rows)], z[len(rows):])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        return {"bert": self.model.bert.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.bert.load_state_dict(state["bert"])
        self.optimizer.load_state_dict(state["optimizer"])

    def encoder(self, epoch: int) -> MiniLM:
        self.model.tuned = {"method": self.name, "epoch": int(epoch), "max_tokens": int(self.hparams["max_tokens"])}
        return self.model.eval()
