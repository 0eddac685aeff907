"""Masked language modelling (BERT, Devlin et al. 2019) on the user's texts: continued from the shipped
all-MiniLM-L6-v2 (`mlm`), or a small BERT trained from scratch on the same word pieces (`mlm-scratch`).

15% of each text's word pieces are chosen (never [CLS], [SEP] or padding); of those 80% become [MASK],
10% a random word piece and 10% stay, and the network predicts the originals (cross-entropy on the
chosen ones only). The prediction head is `transformers`' BertForMaskedLM's, its decoder tied to the word
embeddings; MiniLM ships without one, so its head starts fresh. The encoder kept is the network under the
head, mean-pooled and normalised as MiniLM's vectors are (`MiniLM(state=..., tuned=...)`), so it exports
the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from sslapp.models.text.minilm import MiniLM
from sslapp.models.text.tokens import pad_ids
from sslapp.ssl.text.base import TextSSLMethod

CLS, SEP, MASK = 101, 102, 103  # bert-base-uncased's ids, which all-MiniLM-L6-v2's tokenizer.json keeps
FIRST_WORD_PIECE = 999  # ids below are [unused], special and control pieces: never a random replacement
TOKENS_SEEN = 2_000_000  # word pieces a run reads at most (epochs x corpus)


class MaskedLM(TextSSLMethod):
    name = "mlm"
    backbone = "all-MiniLM-L6-v2"
    init = "minilm"
    defaults = {"batch_size": 32, "lr": 5e-5, "mask_prob": 0.15, "max_tokens": 64}

    def __init__(self, texts: list[str], seed: int = 0, threads: int | None = None, **hparams: Any):
        super().__init__(texts, seed, threads, **hparams)
        from transformers import BertForMaskedLM

        from sslapp.models.text.minilm import TOKENIZER, bert_config, load_bert
        from sslapp.models.text.minilm_files import model_folder, verify
        from sslapp.models.text.tokens import load_tokenizer

        torch.manual_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)
        folder = model_folder()
        verify(folder)
        self.folder, self.shape = folder, self._shape(bert_config(folder))
        self.mlm = BertForMaskedLM(_config(self.shape or bert_config(folder)))
        if self.shape is None:  # continued: the shipped network under a fresh head
            self.mlm.bert.load_state_dict(load_bert(folder).state_dict())
        self.mlm.tie_weights()
        tokenizer = load_tokenizer(folder / TOKENIZER, int(self.hparams["max_tokens"]))
        self.ids = [e.ids for e in tokenizer.encode_batch([t.strip() for t in texts])]
        self.vocab = int(self.mlm.config.vocab_size)
        self.optimizer = torch.optim.AdamW(self.mlm.parameters(), lr=float(self.hparams["lr"]), weight_decay=0.01)

    def _shape(self, shipped: dict[str, Any]) -> dict[str, Any] | None:
        """The network's shape when it is not the shipped one (from scratch); None: continue the shipped."""
        return None

    def max_epochs(self) -> int:
        tokens = sum(len(i) for i in self.ids)
        return max(1, math.ceil(TOKENS_SEEN / max(tokens, 1)))

    def masked(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input ids with the chosen pieces replaced, attention mask, labels: the originals, -100 elsewhere)."""
        ids, attention = pad_ids([self.ids[i] for i in rows])
        word = (attention > 0) & (ids != CLS) & (ids != SEP)
        chosen = word & (self.rng.random(ids.shape) < float(self.hparams["mask_prob"]))
        if not chosen.any() and word.any():  # a batch of very short texts: mask one piece anyway
            chosen[tuple(np.argwhere(word)[self.rng.integers(word.sum())])] = True
        labels = np.where(chosen, ids, -100)
        roll = self.rng.random(ids.shape)
        inputs = ids.copy()
        inputs[chosen & (roll < 0.8)] = MASK
        swap = chosen & (roll >= 0.8) & (roll < 0.9)
        inputs[swap] = self.rng.integers(FIRST_WORD_PIECE, self.vocab, int(swap.sum()))
        return torch.from_numpy(inputs), torch.from_numpy(attention), torch.from_numpy(labels)

    def step(self, rows: np.ndarray, start: float, end: float) -> float:
        inputs, mask, labels = self.masked(rows)
        if not (labels >= 0).any():
            return 0.0
        warmup = 0.06
        factor = start / warmup if start < warmup else max(0.0, (1 - start) / (1 - warmup))  # BERT's schedule
        for group in self.optimizer.param_groups:
            group["lr"] = float(self.hparams["lr"]) * max(factor, 0.01)
        self.mlm.train()
        loss = self.mlm(input_ids=inputs, attention_mask=mask, token_type_ids=torch.zeros_like(inputs),
                        labels=labels).loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.mlm.parameters(), 1.0)
        self.optimizer.step()
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        return {"mlm": self.mlm.state_dict(), "optimizer": self.optimizer.state_dict(), "rng": _rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mlm.load_state_dict(state["mlm"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = _rng_from(state["rng"])

    def encoder(self, epoch: int) -> MiniLM:
        tuned = {"method": self.name, "epoch": int(epoch), "max_tokens": int(self.hparams["max_tokens"])}
        if self.shape is not None:
            tuned["bert"] = self.shape
        state = {k: v.detach().clone() for k, v in self.mlm.bert.state_dict().items()}
        return MiniLM(self.folder, state=state, tuned=tuned).eval()


class MaskedLMScratch(MaskedLM):
    """A small BERT (4 layers, 256 wide) from random weights: what the user's texts teach alone."""

    name = "mlm-scratch"
    backbone = "bert-4x256"
    init = "scratch"
    defaults = {**MaskedLM.defaults, "lr": 5e-4, "layers": 4, "hidden": 256}

    def _shape(self, shipped: dict[str, Any]) -> dict[str, Any]:
        hidden, layers = int(self.hparams["hidden"]), int(self.hparams["layers"])
        return {**shipped, "hidden_size": hidden, "num_hidden_layers": layers,
                "num_attention_heads": max(1, hidden // 64), "intermediate_size": 4 * hidden}


def _config(shape: dict[str, Any]):
    from transformers import BertConfig

    return BertConfig(**shape)


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """numpy's PCG64 state as plain numbers (checkpoints hold no pickles): its 128-bit state and increment."""
    s = rng.bit_generator.state
    return {"state": str(s["state"]["state"]), "inc": str(s["state"]["inc"]), "has_uint32": int(s["has_uint32"]),
            "uinteger": int(s["uinteger"])}


def _rng_from(saved: dict[str, Any]) -> dict[str, Any]:
    return {"bit_generator": "PCG64", "state": {"state": int(saved["state"]), "inc": int(saved["inc"])},
            "has_uint32": int(saved["has_uint32"]), "uinteger": int(saved["uinteger"])}
