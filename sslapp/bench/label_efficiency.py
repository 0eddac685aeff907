"""Label efficiency: how accurate is the app after a simulated user labels 10, 50, 100 images?

The run does what a person would do: ingest the folder into a workspace, pretrain within a time
budget, embed, then repeatedly ask for suggestions and "label" them by looking the answer up in the
truth CSV. After each budget it trains the app's classifier (label propagation + linear probe,
`sslapp.finetune.api.train_on_embeddings`) and scores it on every image whose label was never
revealed. Random picks are averaged over several seeds and their spread reported.

Baselines from the same run, on the same label sets:
- ``raw-pixels-random`` / ``raw-pixels-typical``: logistic regression on PCA-50 of the cached pixels,
  labels from random picks / from TypiClust picks on those pixels (the issue's reference);
- ``embeddings-rf-random`` / ``embeddings-rf-<strategy>``: a random forest on the same frozen
  embeddings (the few-shot classifier LightlyStudio offers) on the same picks.
"""

from __future__ import annotations

import csv
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Say = Callable[[str], None]
RAW_PCA_DIMS = 50
# --pretrain-minutes 0 scores the provisional pixel embedding at a fixed size, so results do not move
# when the app's display default changes (32-d PCA scored 0.54 vs 0.65 for 64-d on mnist at 10 labels).
PROVISIONAL_DIM = 64


class BenchError(ValueError):
    """Input the benchmark cannot use, with what to do instead."""


@dataclass
class Truth:
    """Ground truth for the ingested items, aligned with the feature rows."""

    item_ids: np.ndarray  # (N,) item id of each feature row
    y: np.ndarray  # (N,) class index, -1 where the truth CSV has no row
    classes: list[str]


def read_truth(path: str | Path) -> dict[str, str]:
    """`relative/path.png,class` rows -> {path: class}; a header row `path,label` is allowed."""
    path = Path(path)
    if not path.exists():
        raise BenchError(f"truth file {path} does not exist")
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise BenchError(f"{path} line {n}: expected 'relative image path,class name', got {row!r}")
            rel, cls = row[0].strip().replace("\\", "/"), row[1].strip()
            if n == 1 and rel.lower() in ("path", "file", "filename", "image") and not cls.isdigit():
                continue  # header
            out[rel] = cls
    if len(set(out.values())) < 2:
        raise BenchError(f"{path} names {len(set(out.values()))} class(es); the benchmark needs at least 2")
    return out


def parse_budgets(text: str | Sequence[int]) -> list[int]:
    values = [int(v) for v in (text.split(",") if isinstance(text, str) else text) if str(v).strip()]
    if not values or min(values) < 1:
        raise BenchError(f"budgets must be positive integers such as 10,50,100 (got {text!r})")
    return sorted(set(values))


# -- the simulated user's workspace ---------------------------------------------------------
def prepare_workspace(images_dir: Path, truth_map: dict[str, str], workspace: Path, cache_size: int,
                      say: Say) -> tuple[Any, Truth]:
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    ws = open_workspace(workspace, cache_size=cache_size)
    if ws.store.count_items() == 0:
        report = ingest(ws, [str(images_dir)], base=str(images_dir))
        say(f"ingested {report['added']} images ({len(report['skipped'])} skipped, "
            f"{report['duplicates']} duplicates) in {report['seconds']:.1f}s")
    else:
        say(f"reusing {ws.store.count_items()} images already in {ws.root}")
    classes = sorted(set(truth_map.values()))
    index = {c: k for k, c in enumerate(classes)}
    pairs = ws.store.items()
    item_ids = np.array([r["id"] for r in pairs], np.int64)
    y = np.array([index.get(truth_map.get(r["source"], ""), -1) for r in pairs], np.int64)
    if (y >= 0).sum() == 0:
        raise BenchError("no ingested image has a row in the truth CSV; its paths must be relative to IMAGES_DIR "
                         f"(e.g. {pairs[0]['source'] if pairs else 'img/0001.png'})")
    if (y < 0).any():
        say(f"{int((y < 0).sum())} images have no truth row; they are never suggested nor scored")
    return ws, Truth(item_ids, y, classes)


def pretrain_and_embed(ws, minutes: float, seed: int, say: Say, method: str = "simclr",
                       reuse_encoder: bool = False) -> tuple[np.ndarray, dict]:
    """Features for every item (ordered by item id) and {"method", "seconds"} of the pretraining.

    `reuse_encoder`: a workspace kept from an earlier run (--workspace) keeps its encoder, so other
    strategies can be compared on the same embeddings without pretraining again.
    """
    from sslapp.embed.embed import choose_model, encoder_features, load_model, provisional_features
    from sslapp.ingest.cache import read_cache

    pairs = ws.store.item_ids_and_cache_index()
    rows = np.array([p[1] for p in pairs], np.int64)
    started = time.monotonic()
    existing = ws.store.latest_artifact("encoder")
    if reuse_encoder and minutes > 0 and existing is not None:
        run = ws.store.run(existing["run_id"]) if existing.get("run_id") else None
        elapsed = ((run or {}).get("summary") or {}).get("elapsed_s")
        meta = existing.get("meta") or {}
        feats = encoder_features(load_model(ws, choose_model(ws)), read_cache(ws), rows)
        say(f"reusing encoder {existing['path']} ({meta.get('method')}, {meta.get('epoch')} epochs)")
        return feats, {"method": f"{meta.get('method', '?')} {meta.get('backbone', '')} (reused)".strip(),
                       "seconds": elapsed}
    if minutes <= 0:
        say(f"no pretraining (--pretrain-minutes 0): provisional pixel embedding (PCA-{PROVISIONAL_DIM})")
        feats = provisional_features(read_cache(ws), rows, dim=PROVISIONAL_DIM, seed=seed)
        return feats, {"method": f"none (provisional pixel embedding, PCA-{PROVISIONAL_DIM})", "seconds": round(time.monotonic() - started, 1)}
    from sslapp.ssl.train import pretrain

    say(f"pretraining {method} for {minutes:g} min")
    summary = pretrain(ws, {"method": method, "minutes": float(minutes), "seed": seed, "probe": False})
    seconds = round(time.monotonic() - started, 1)
    choice = choose_model(ws)
    if choice.source == "provisional":
        raise BenchError("pretraining finished without saving an encoder; give it more minutes")
    feats = encoder_features(load_model(ws, choice), read_cache(ws), rows)
    say(f"pretrained {summary.get('backbone')} for {summary.get('epochs')} epochs ({seconds:.0f}s); embedded")
    return feats, {"method": f"{summary.get('method', method)} {summary.get('backbone', '')}".strip(),
                   "seconds": seconds}


# -- classifiers ----------------------------------------------------------------------------
def _remap(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seen = np.unique(labels)
    return seen, np.searchsorted(seen, labels)


def app_predict(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """The app's classifier from these labels: class index for every row."""
    seen, local = _remap(labels)
    if len(seen) < 2:
        return np.full(len(features), seen[0])
    from sslapp.finetune.api import train_on_embeddings

    probs = train_on_embeddings(features, labeled_idx, local, propagate="auto", seed=seed, n_classes=len(seen))
    return seen[probs.argmax(axis=1)]


def sklearn_predict(kind: str, features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray,
                    seed: int) -> np.ndarray:
    if len(np.unique(labels)) < 2:
        return np.full(len(features), labels[0])
    if kind == "rf":
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)
    else:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(max_iter=2000)
    return model.fit(features[labeled_idx], labels).predict(features)


def accuracy(pred: np.ndarray, y: np.ndarray, revealed: np.ndarray) -> float:
    mask = y >= 0
    mask[revealed] = False
    return float((pred[mask] == y[mask]).mean()) if mask.any() else float("nan")


# -- the simulated user ---------------------------------------------------------------------
def simulate(strategy: str, features: np.ndarray, y: np.ndarray, budgets: list[int], seed: int,
             round_size: int, on_budget: Callable[[int, np.ndarray], None]) -> None:
    """Ask for suggestions in rounds of at most `round_size`, reveal them; call on_budget at each budget."""
    from sslapp.select import select

    unknown = np.flatnonzero(y < 0)
    revealed: list[int] = []
    for budget in budgets:
        while len(revealed) < budget:
            need = min(round_size, budget - len(revealed))
            idx = np.array(revealed, np.int64)
            sel = select(strategy, features, idx, y[idx], need, exclude=unknown, seed=seed)
            if not sel.suggestions:
                break
            revealed += sel.indices
        on_budget(budget, np.array(revealed, np.int64))


def raw_pixels(ws, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    from sslapp.ingest.cache import read_cache

    pairs = ws.store.item_ids_and_cache_index()
    cache = read_cache(ws)
    x = np.asarray(cache[np.array([p[1] for p in pairs], np.int64)], np.float32).reshape(len(pairs), -1) / 255.0
    k = min(RAW_PCA_DIMS, x.shape[0] - 1, x.shape[1])
    return PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)


def _mean_row(values: list[float]) -> dict[str, float]:
    row = {"accuracy": round(float(np.mean(values)), 4)}
    if len(values) > 1:
        row["accuracy_std"] = round(float(np.std(values)), 4)
    return row


def run_label_efficiency(images_dir: str | Path, truth_csv: str | Path, budgets: Sequence[int] | str = (10, 50, 100),
                         strategies: Sequence[str] = ("auto", "random"), pretrain_minutes: float = 10.0,
                         workspace: str | Path | None = None, seed: int = 0, random_seeds: int = 3,
                         round_size: int = 20, cache_size: int = 32, method: str = "simclr",
                         reuse_encoder: bool = False, say: Say = lambda m: None) -> dict[str, Any]:
    """The whole benchmark; returns {"results": [...], "baselines": [...], "pretrain": {...}}."""
    from sslapp.select import STRATEGIES

    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise BenchError(f"{images_dir} is not a folder of images")
    budgets = parse_budgets(budgets)
    strategies = list(dict.fromkeys(strategies))
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        raise BenchError(f"unknown strategies {', '.join(bad)}; choose from {', '.join(STRATEGIES)}")
    if random_seeds < 1:
        raise BenchError("random seeds must be at least 1")
    truth_map = read_truth(truth_csv)
    tmp, ws = None, None
    if workspace is None:
        tmp = tempfile.TemporaryDirectory(prefix="sslapp-bench-")
        workspace = Path(tmp.name) / "ws"
    try:
        ws, truth = prepare_workspace(images_dir, truth_map, Path(workspace), cache_size, say)
        n_known = int((truth.y >= 0).sum())
        if budgets[-1] >= n_known:
            raise BenchError(f"the largest budget ({budgets[-1]}) must be below the number of labelled images "
                             f"({n_known}) so something is left to score")
        features, pretrain_info = pretrain_and_embed(ws, pretrain_minutes, seed, say, method, reuse_encoder)
        raw = raw_pixels(ws, seed)
        y = truth.y
        results: list[dict[str, Any]] = []
        base: dict[tuple[str, int], list[float]] = {}

        def score(strategy: str, run_seed: int, table: dict[int, list[float]], counts: dict[int, int]):
            def on_budget(budget: int, revealed: np.ndarray) -> None:
                labels = y[revealed]
                acc = accuracy(app_predict(features, revealed, labels, run_seed), y, revealed)
                table.setdefault(budget, []).append(acc)
                counts[budget] = len(revealed)
                rf = accuracy(sklearn_predict("rf", features, revealed, labels, run_seed), y, revealed)
                base.setdefault((f"embeddings-rf-{strategy}", budget), []).append(rf)
                if strategy == "random":
                    lr = accuracy(sklearn_predict("lr", raw, revealed, labels, run_seed), y, revealed)
                    base.setdefault(("raw-pixels-random", budget), []).append(lr)
                say(f"{strategy} seed {run_seed}: {len(revealed)} labels -> accuracy {acc:.3f} (rf {rf:.3f})")
            return on_budget

        for strategy in strategies:
            seeds = [seed + k for k in range(random_seeds)] if strategy == "random" else [seed]
            table: dict[int, list[float]] = {}
            counts: dict[int, int] = {}
            for s in seeds:
                simulate(strategy, features, y, budgets, s, round_size, score(strategy, s, table, counts))
            for budget in budgets:
                results.append({"strategy": strategy, "budget": budget, "labels": counts[budget],
                                **_mean_row(table[budget])})
        if "random" not in strategies:  # the raw-pixel reference always uses random picks
            for k in range(random_seeds):
                simulate("random", raw, y, budgets, seed + k, round_size,
                         lambda b, r, s=seed + k: base.setdefault(("raw-pixels-random", b), []).append(
                             accuracy(sklearn_predict("lr", raw, r, y[r], s), y, r)))
        simulate("typiclust", raw, y, budgets, seed, round_size,
                 lambda b, r: base.setdefault(("raw-pixels-typical", b), []).append(
                     accuracy(sklearn_predict("lr", raw, r, y[r], seed), y, r)))
        baselines = [{"name": name, "budget": budget, **_mean_row(values)}
                     for (name, budget), values in sorted(base.items(), key=lambda kv: (kv[0][0], kv[0][1]))]
        return {"results": results, "baselines": baselines, "pretrain": pretrain_info}
    finally:
        if ws is not None:
            ws.store.close()
        if tmp is not None:
            tmp.cleanup()
