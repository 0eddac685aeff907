"""Word2Vec (skip-gram with negative sampling, Mikolov et al. 2013) trained with gensim on the user's texts;
the encoder averages a text's word vectors the SIF way (`sslapp.models.text.sif`).

Words are TF-IDF's (lowercase, accents stripped, `\\b\\w+\\b`), so the exported model reads word counts.
A step trains one chunk of texts for one pass with the learning rate (`alpha`) falling linearly over the
whole run, as gensim does over its epochs; the vocabulary comes from all the texts first (words in at
least `min_count` texts' worth of occurrences). Its state is the vocabulary and the two weight matrices,
saved as tensors, never as gensim's pickles.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from sslapp.models.text.sif import SifVectors, sif_weights
from sslapp.models.text.terms import OPTIONS, vectorizer
from sslapp.ssl.text.base import TextSSLMethod

WORDS_SEEN = 2_000_000  # words a run reads at most (epochs x corpus): small corpora get more passes
MIN_EPOCHS, MAX_EPOCHS = 5, 100
COMPONENT_TEXTS = 20_000  # texts the SIF common component is fitted on at most


class Word2VecSIF(TextSSLMethod):
    name = "word2vec"
    backbone = "word2vec-sif"
    defaults = {"batch_size": 1000, "dim": 100, "window": 5, "negative": 5, "min_count": 2, "sample": 1e-3,
                "alpha": 0.025, "min_alpha": 1e-4}

    def __init__(self, texts: list[str], seed: int = 0, threads: int | None = None, **hparams: Any):
        super().__init__(texts, seed, threads, **hparams)
        from gensim.models import Word2Vec

        logging.getLogger("gensim").setLevel(logging.ERROR)  # it warns at every call about alpha and jobs
        analyse = vectorizer(OPTIONS).build_analyzer()
        self.texts = texts
        self.sentences = [analyse(t) for t in texts]
        self.words_total = sum(len(s) for s in self.sentences)
        hp = self.hparams
        self.model = Word2Vec(vector_size=int(hp["dim"]), window=int(hp["window"]), sg=1, hs=0,
                              negative=int(hp["negative"]), sample=float(hp["sample"]),
                              min_count=int(hp["min_count"]) if len(texts) >= 100 else 1,
                              workers=max(1, int(threads or torch.get_num_threads())), seed=self.seed)
        try:
            self.model.build_vocab(self.sentences)
        except RuntimeError as exc:  # "you must first build vocabulary before training the model"
            raise ValueError("the texts hold too few words to learn word vectors from; add more texts") from exc
        if len(self.model.wv) < 2:
            raise ValueError("the texts hold too few words to learn word vectors from; add more texts")

    def max_epochs(self) -> int:
        return int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(WORDS_SEEN / max(self.words_total, 1)))))

    def step(self, rows: np.ndarray, start: float, end: float) -> float:
        hp = self.hparams
        alpha = lambda p: hp["alpha"] - (hp["alpha"] - hp["min_alpha"]) * min(1.0, max(0.0, p))  # noqa: E731
        chunk = [self.sentences[i] for i in rows if self.sentences[i]]
        if not chunk:
            return 0.0
        effective, _ = self.model.train(chunk, total_examples=len(chunk), epochs=1, start_alpha=alpha(start),
                                        end_alpha=alpha(end), compute_loss=True)
        return float(self.model.get_latest_training_loss()) / max(int(effective), 1)

    def state_dict(self) -> dict[str, Any]:
        _, keys, pos, has_gauss, cached = self.model.random.get_state()  # negative sampling's draws go on
        return {"words": list(self.model.wv.index_to_key),
                "vectors": torch.from_numpy(np.array(self.model.wv.vectors, np.float32)),
                "syn1neg": torch.from_numpy(np.array(self.model.syn1neg, np.float32)),
                "random": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                           "has_gauss": int(has_gauss), "cached": float(cached)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["words"]) != list(self.model.wv.index_to_key):
            raise ValueError("the texts changed since this run started (their words differ); start a new run")
        self.model.wv.vectors[:] = state["vectors"].numpy()
        self.model.syn1neg[:] = state["syn1neg"].numpy()
        r = state["random"]
        self.model.random.set_state(("MT19937", r["keys"].numpy().astype(np.uint32), r["pos"], r["has_gauss"],
                                     r["cached"]))

    def encoder(self, epoch: int) -> SifVectors:
        wv = self.model.wv
        counts = np.array([wv.get_vecattr(w, "count") for w in wv.index_to_key], np.float64)
        enc = SifVectors(list(wv.index_to_key), np.array(wv.vectors, np.float32), sif_weights(counts),
                         info={"method": self.name, "epoch": int(epoch), "window": int(self.hparams["window"])})
        sample = np.random.default_rng(self.seed).permutation(len(self.texts))[:COMPONENT_TEXTS]
        return enc.fit_component([self.texts[i] for i in np.sort(sample)]).eval()
