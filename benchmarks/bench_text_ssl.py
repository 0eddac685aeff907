"""Whether the text SSL methods (sslapp.ssl.text) beat the frozen MiniLM on a labelled table of texts: each
method trains on every text for a number of epochs, then its vectors get the same two probes as the frozen
MiniLM and TF-IDF + SVD (the cheap baseline) in the same run: 10-NN accuracy with every label (5-fold,
cosine) and a logistic probe on 2 random labels per class (--seeds seeds), tested on the rest.

Reads banking77's test.csv (the shared datasets, `benchmarks/data.py`) or --csv (columns text, and category
or label). Run it alone (the load average before and after is in the output):

    flock /tmp/sslapp-heavy.lock .venv/bin/python benchmarks/bench_text_ssl.py \\
        [--methods simcse:1,mlm:1,mlm-scratch:3,word2vec:59] [--setfit 5,20] [--n N] [--threads 2] [--seeds 3]
        [--csv FILE]

`--methods` takes NAME:EPOCHS[:LR]. `--setfit R,...` adds SetFit's way by hand for each R: MiniLM trained one
epoch on pairs of the 2-per-class labels of seed 0 (per label R pairs of the same class, cosine 1, and R of
another, cosine 0; batch 16, lr 2e-5), then the same logistic probe on the rest (probe2 of seed 0 only, beside
the frozen model's `probe2_seed0`). Prints one JSON object: n, classes, threads, load_before, load_after and rows
(name, epochs, train_s, texts_per_s, knn10, probe2; setfit rows: r, pairs, train_s, probe2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def probes(vectors: np.ndarray, y: np.ndarray, seeds: int) -> dict[str, float]:
    """10-NN accuracy with every label (cross-validated) and a logistic probe at 2 labels per class."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = int(min(5, np.bincount(y).min()))
    knn = cross_val_score(KNeighborsClassifier(min(10, len(y) - len(y) // folds - 1), metric="cosine"),
                          vectors, y, cv=folds).mean()
    accs = []
    for seed in range(seeds):
        idx, rest = label_rows(y, seed)
        clf = LogisticRegression(C=10, max_iter=2000).fit(vectors[idx], y[idx])
        accs.append(float((clf.predict(vectors[rest]) == y[rest]).mean()))
    return {"knn10": round(float(knn), 4), "probe2": round(float(np.mean(accs)), 4),
            "probe2_seed0": round(accs[0], 4)}


def label_rows(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(2 random rows of each class, the other rows), as `probes` picks them for `seed`."""
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), 2, replace=False) for c in np.unique(y)])
    return idx, np.setdiff1d(np.arange(len(y)), idx)


def setfit(texts: list[str], y: np.ndarray, r: int) -> dict[str, float]:
    """SetFit's contrastive step by hand on the shipped MiniLM (see the module docstring), then its probe."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from sslapp.models.text.minilm import TOKENIZER, MiniLM
    from sslapp.models.text.tokens import load_tokenizer, pad_ids

    torch.manual_seed(0)
    rng, model = np.random.default_rng(0), MiniLM()
    idx, rest = label_rows(y, 0)
    pairs = []
    for a in idx:
        same, other = [b for b in idx if b != a and y[b] == y[a]], [b for b in idx if y[b] != y[a]]
        for _ in range(r):
            pairs += [(a, same[rng.integers(len(same))], 1.0), (a, other[rng.integers(len(other))], 0.0)]
    order = rng.permutation(len(pairs))
    ids = [e.ids for e in load_tokenizer(model.folder / TOKENIZER, 64).encode_batch(texts)]

    def batch(rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(torch.from_numpy(a) for a in pad_ids([ids[i] for i in rows]))

    optimizer = torch.optim.AdamW(model.vectors.parameters(), lr=2e-5)
    steps, started = max(1, len(pairs) // 16), time.perf_counter()
    model.vectors.train()
    for s in range(steps):
        chunk = [pairs[k] for k in order[s * 16:(s + 1) * 16]]
        for group in optimizer.param_groups:
            group["lr"] = 2e-5 * (1 - s / steps)
        za, zb = model.vectors(*batch([p[0] for p in chunk])), model.vectors(*batch([p[1] for p in chunk]))
        loss = torch.nn.functional.mse_loss((za * zb).sum(1), torch.tensor([p[2] for p in chunk]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    v = model.eval().embed(texts)
    head = LogisticRegression(C=10, max_iter=2000).fit(v[idx], y[idx])
    return {"r": r, "pairs": len(pairs), "train_s": round(seconds, 1),
            "probe2": round(float((head.predict(v[rest]) == y[rest]).mean()), 4)}


def train(name: str, epochs: int, lr: float | None, texts: list[str], threads: int) -> tuple[object, float, float]:
    """(the method's encoder after `epochs` passes, seconds, texts per second), stepped as the text loop does."""
    from sslapp.ssl.methods import METHODS

    extra = {"lr": lr} if lr is not None else {}
    method = METHODS.load(name)(texts, seed=0, threads=threads, **extra)
    batch = min(method.batch_size, len(texts))
    steps = max(1, len(texts) // batch)
    total, started = epochs * steps, time.perf_counter()
    for epoch in range(epochs):
        perm = np.random.default_rng(epoch).permutation(len(texts))
        for s in range(steps):
            done = epoch * steps + s
            method.step(perm[s * batch:(s + 1) * batch], done / total, (done + 1) / total)
    seconds = time.perf_counter() - started
    return method.encoder(epochs), seconds, total * batch / max(seconds, 1e-9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="simcse:1,mlm:1,mlm-scratch:3,word2vec:59")
    parser.add_argument("--n", type=int, default=0, help="the first N texts (default all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--csv")
    parser.add_argument("--setfit", default="", help="comma-separated pairs per label, e.g. 5,20")
    args = parser.parse_args(argv)
    import torch

    from sslapp.models.text.minilm import MiniLM
    from sslapp.models.text.tfidf import fit_tfidf

    torch.set_num_threads(args.threads)
    from benchmarks.data import text_table

    texts, y = text_table(args.csv, "test.csv", args.n)
    out = {"n": len(texts), "classes": int(y.max()) + 1, "threads": args.threads,
           "load_before": list(os.getloadavg()), "rows": []}
    out["rows"].append({"name": "minilm (frozen)", **probes(MiniLM().embed(texts), y, args.seeds)})
    out["rows"].append({"name": "tfidf", **probes(fit_tfidf(texts).embed(texts), y, args.seeds)})
    for spec in filter(None, args.methods.split(",")):
        name, epochs, *lr = spec.split(":")
        encoder, seconds, rate = train(name, int(epochs), float(lr[0]) if lr else None, texts, args.threads)
        out["rows"].append({"name": name, "epochs": int(epochs), "train_s": round(seconds, 1),
                            "texts_per_s": round(rate, 1), **probes(encoder.embed(texts), y, args.seeds)})
        print(json.dumps(out["rows"][-1]), file=sys.stderr, flush=True)
    for r in (int(v) for v in filter(None, args.setfit.split(","))):
        out["rows"].append({"name": "setfit", **setfit(texts, y, r)})
        print(json.dumps(out["rows"][-1]), file=sys.stderr, flush=True)
    out["load_after"] = list(os.getloadavg())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
