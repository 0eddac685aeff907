"""Label efficiency: how accurate is the app after a simulated user labels 10, 50, 100 images?

The run does what a person would do: ingest the folder into a workspace, pretrain within a time
budget, embed, then repeatedly ask for suggestions and "label" them by looking the answer up in the
truth CSV. After each budget it trains the app's classifier (label propagation + linear probe,
`sslapp.estimators.api.train_on_embeddings`) and scores it on every image whose label was never
revealed. Random picks are averaged over several seeds and their spread reported.

Baselines from the same run, on the same label sets:
- ``raw-pixels-random`` / ``raw-pixels-typical`` (texts: ``tfidf-random`` / ``tfidf-typical``): logistic
  regression on the cheap features (PCA-50 of the cached pixels; TF-IDF + SVD), labels from random picks /
  from TypiClust picks on those features (`sslapp.bench.pile.cheap_baseline`);
- ``embeddings-rf-random`` / ``embeddings-rf-<strategy>``: a random forest on the same frozen
  embeddings (the few-shot classifier LightlyStudio offers) on the same picks.

Each budget of each run also checks the estimate the app would show (`sslapp.bench.estimate_check`):
is the true class-balanced accuracy on the unrevealed images inside its 95% interval? Per run in
``coverage.checks``, over all runs in ``coverage`` (the rate, goal 90%), per results row in
``coverage`` and ``estimate``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sslapp.bench.pile import BenchError, cheap_baseline, prepare_workspace, read_truth, read_truth_column

__all__ = ["BenchError", "read_truth", "run_label_efficiency"]
Say = Callable[[str], None]
# --pretrain-minutes 0 scores the provisional pixel embedding at a fixed size, so results do not move
# when the app's display default changes (32-d PCA scored 0.54 vs 0.65 for 64-d on mnist at 10 labels).
PROVISIONAL_DIM = 64


def parse_budgets(text: str | Sequence[int]) -> list[int]:
    values = [int(v) for v in (text.split(",") if isinstance(text, str) else text) if str(v).strip()]
    if not values or min(values) < 1:
        raise BenchError(f"budgets must be positive integers such as 10,50,100 (got {text!r})")
    return sorted(set(values))


EMBEDDINGS = ("app", "pixels", "patches", "imagenet", "ssl", "continued", "minilm", "tfidf", "mfcc")


def _pretrained(ws, config: dict, say: Say) -> tuple[dict, dict]:
    """Run one pretraining in the workspace; (its newest encoder artifact, info)."""
    from sslapp.modalities import workspace_modality
    from sslapp.ssl.train import PretrainConfig, pretrain

    started = time.monotonic()
    say(f"pretraining {config.get('method')} {config.get('backbone', 'auto')} for {config['minutes']:g} min"
        + (f" from {config['init']}" if config.get("init") else ""))
    if workspace_modality(ws).name == "text":
        from sslapp.ssl.text.loop import pretrain_texts

        summary = pretrain_texts(ws, PretrainConfig.from_params({**config, "probe": False}))
    else:
        summary = pretrain(ws, {**config, "probe": False})
    run_arts = [a for a in ws.store.artifacts("encoder", limit=100_000) if a.get("run_id") == summary.get("run_id")]
    if not run_arts:
        raise BenchError("pretraining finished without saving an encoder; give it more minutes")
    seconds = round(time.monotonic() - started, 1)
    say(f"pretrained {summary.get('backbone')} for {summary.get('epochs')} epochs ({seconds:.0f}s)")
    return run_arts[0], {"method": f"{summary.get('method')} {summary.get('backbone', '')}".strip(),
                         "epochs": summary.get("epochs"), "seconds": seconds}


def embeddings_for(ws, kinds: Sequence[str], minutes: float, seed: int, say: Say, method: str | None = None,
                   reuse_encoder: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any] | None]:
    """{kind: features} for every item (store order), the pretraining info, and for "app" the candidates
    the app chooses among, with the prior it uses before labels: {"features", "names", "prior"}."""
    from sslapp.features.choose import prior_index
    from sslapp.features.items import quick_features
    from sslapp.features.read import describe, encoders
    from sslapp.features.service import ensure_starting_encoders, features_for
    from sslapp.ingest.cache import read_cache

    pairs = ws.store.item_ids_and_cache_index()
    rows = np.array([p[1] for p in pairs], np.int64)
    out: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"method": "none", "seconds": 0.0}
    from sslapp.modalities import workspace_modality

    modality = workspace_modality(ws)
    if minutes > 0 and not modality.ssl_methods:
        raise BenchError(f"no self-supervised method trains on {modality.plural} yet; pass --pretrain-minutes 0")
    method = method or (modality.ssl_methods[0] if modality.ssl_methods else "simclr")
    if minutes > 0 and method not in modality.ssl_methods:
        raise BenchError(f"{method!r} does not train on {modality.plural}; use --method with one of: "
                         f"{', '.join(modality.ssl_methods)}")
    ensure_starting_encoders(ws, seed=seed)
    starts = {(a.get("meta") or {}).get("start"): a for a in encoders(ws)}
    ssl_art = None
    if minutes > 0 and ("ssl" in kinds or "app" in kinds):
        runs = [a for a in encoders(ws) if a.get("run_id") is not None
                and (a.get("meta") or {}).get("init") != "imagenet"]
        if reuse_encoder and runs:
            ssl_art = runs[-1]
            info = {"method": f"{(ssl_art.get('meta') or {}).get('method')} (reused)", "seconds": None}
            say(f"reusing encoder {ssl_art['path']}")
        else:
            ssl_art, info = _pretrained(ws, {"method": method, "minutes": float(minutes), "seed": seed}, say)
    for kind in kinds:
        if kind == "pixels":
            out[kind] = quick_features(ws, rows, dim=PROVISIONAL_DIM, seed=seed)
        elif kind in ("patches", "imagenet", "minilm", "tfidf", "mfcc"):
            if kind not in starts:
                raise BenchError(f"the {kind} start is not available here")
            out[kind] = features_for(ws, starts[kind]).features
        elif kind == "ssl" and ssl_art is not None:
            out[kind] = features_for(ws, ssl_art).features
        elif kind == "continued":
            art, cinfo = _pretrained(ws, {"method": method, "minutes": float(minutes), "seed": seed,
                                          "backbone": "efficientnet-lite0", "init": "imagenet"}, say)
            info["continued"] = cinfo
            out[kind] = features_for(ws, art).features
    app = None
    if "app" in kinds:  # what the app's default setup has: the starts, plus the default pretraining run
        arts = [a for a in encoders(ws) if (a.get("meta") or {}).get("start")
                or (ssl_art is not None and a["id"] == ssl_art["id"])]
        feats = [features_for(ws, a).features for a in arts]
        prior = prior_index([(a.get("meta") or {}).get("start") for a in arts], modality.start_order(read_cache(ws)))
        app = {"features": feats, "names": [describe(a) for a in arts], "prior": prior}
        say(f"app candidates: {', '.join(app['names'])}; before labels: {app['names'][prior]}")
    return out, info, app


# -- classifiers ----------------------------------------------------------------------------
def _remap(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seen = np.unique(labels)
    return seen, np.searchsorted(seen, labels)


def app_predict(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """The app's classifier from these labels: class index for every row."""
    seen, local = _remap(labels)
    if len(seen) < 2:
        return np.full(len(features), seen[0])
    from sslapp.estimators.api import train_on_embeddings

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
FeaturesAt = Callable[[np.ndarray], np.ndarray]


def fixed(features: np.ndarray) -> FeaturesAt:
    return lambda revealed: features


def app_choice(app: dict[str, Any], y: np.ndarray) -> FeaturesAt:
    """The app's embedding for the labels revealed so far (`sslapp.features.choose`, as the worker does)."""
    from sslapp.features.choose import choose

    def at(revealed: np.ndarray) -> np.ndarray:
        return app["features"][choose(app["features"], revealed, y[revealed], app["prior"], app["names"]).index]
    return at


def simulate(strategy: str, features_at: FeaturesAt, y: np.ndarray, budgets: list[int], seed: int,
             round_size: int, on_budget: Callable[[int, np.ndarray, np.ndarray], None]) -> None:
    """Ask for suggestions in rounds of at most `round_size`, reveal them; call on_budget at each budget
    with the revealed rows and the features the app uses then."""
    from sslapp.select import select

    unknown = np.flatnonzero(y < 0)
    revealed: list[int] = []
    for budget in budgets:
        while len(revealed) < budget:
            need = min(round_size, budget - len(revealed))
            idx = np.array(revealed, np.int64)
            sel = select(strategy, features_at(idx), idx, y[idx], need, exclude=unknown, seed=seed)
            if not sel.suggestions:
                break
            revealed += sel.indices
        done = np.array(revealed, np.int64)
        on_budget(budget, done, features_at(done))


def _mean_row(values: list[float]) -> dict[str, float]:
    row = {"accuracy": round(float(np.mean(values)), 4)}
    if len(values) > 1:
        row["accuracy_std"] = round(float(np.std(values)), 4)
    return row


def run_label_efficiency(source: str | Path, truth_csv: str | Path | None = None, budgets: Sequence[int] | str = (10, 50, 100),
                         strategies: Sequence[str] = ("auto", "random"), pretrain_minutes: float = 10.0,
                         workspace: str | Path | None = None, seed: int = 0, random_seeds: int = 3,
                         round_size: int = 20, cache_size: int = 32, method: str | None = None,
                         reuse_encoder: bool = False, embeddings: Sequence[str] = ("app",),
                         text_column: str | None = None, truth_column: str | None = None,
                         say: Say = lambda m: None) -> dict[str, Any]:
    """The whole benchmark on a folder of images (answers in `truth_csv`) or a table of texts (answers in
    its `truth_column`, hidden from the app); returns {"results", "baselines", "pretrain", "coverage"}."""
    from sslapp.bench.estimate_check import check_row, fit_and_estimate, row_fields, summary
    from sslapp.select import STRATEGIES

    source = Path(source)
    if source.is_dir():
        if truth_csv is None:
            raise BenchError("a folder of images needs --truth TRUTH.csv (rows of 'relative path,class')")
    elif not source.is_file():
        raise BenchError(f"{source} is neither a folder of images nor a table of texts")
    elif truth_column is None:
        raise BenchError(f"name the column of {source.name} that holds the answers with --truth-column")
    budgets = parse_budgets(budgets)
    strategies = list(dict.fromkeys(strategies))
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        raise BenchError(f"unknown strategies {', '.join(bad)}; choose from {', '.join(STRATEGIES)}")
    embeddings = list(dict.fromkeys(embeddings))
    unknown = [e for e in embeddings if e not in EMBEDDINGS]
    if unknown or not embeddings:
        raise BenchError(f"unknown embeddings {', '.join(unknown) or '(none)'}; choose from {', '.join(EMBEDDINGS)}")
    if "ssl" in embeddings and pretrain_minutes <= 0:
        raise BenchError("the ssl embedding needs --pretrain-minutes above 0")
    if random_seeds < 1:
        raise BenchError("random seeds must be at least 1")
    truth_map = read_truth(truth_csv) if source.is_dir() else read_truth_column(source, truth_column)
    options = None if source.is_dir() else {"text_column": text_column}
    tmp, ws = None, None
    if workspace is None:
        tmp = tempfile.TemporaryDirectory(prefix="sslapp-bench-")
        workspace = Path(tmp.name) / "ws"
    try:
        ws, truth = prepare_workspace(source, truth_map, Path(workspace), cache_size, say, options)
        n_known = int((truth.y >= 0).sum())
        if budgets[-1] >= n_known:
            raise BenchError(f"the largest budget ({budgets[-1]}) must be below the number of items with an answer "
                             f"({n_known}) so something is left to score")
        feats, pretrain_info, app = embeddings_for(ws, embeddings, pretrain_minutes, seed, say, method,
                                                   reuse_encoder)
        cheap, raw = cheap_baseline(ws, seed)
        y = truth.y
        results: list[dict[str, Any]] = []
        checks: list[dict[str, Any]] = []  # the estimate shown against the truth, per run and budget
        base: dict[tuple[str, int], list[float]] = {}
        for embedding in embeddings:
            features_at = app_choice(app, y) if embedding == "app" else fixed(feats[embedding])

            def score(strategy: str, run_seed: int, table: dict[int, list[float]], counts: dict[int, int],
                      embedding: str = embedding):
                def on_budget(budget: int, revealed: np.ndarray, features: np.ndarray) -> None:
                    labels = y[revealed]
                    pred, estimate = fit_and_estimate(features, revealed, labels, run_seed)
                    acc = accuracy(pred, y, revealed)
                    table.setdefault(budget, []).append(acc)
                    check = {"embedding": embedding, "strategy": strategy, "seed": run_seed, "budget": budget,
                             **check_row(pred, estimate, y, revealed)}
                    checks.append(check)
                    counts[budget] = len(revealed)
                    if embedding == embeddings[0]:
                        rf = accuracy(sklearn_predict("rf", features, revealed, labels, run_seed), y, revealed)
                        base.setdefault((f"embeddings-rf-{strategy}", budget), []).append(rf)
                    if strategy == "random" and embedding == embeddings[0]:
                        lr = accuracy(sklearn_predict("lr", raw, revealed, labels, run_seed), y, revealed)
                        base.setdefault((f"{cheap}-random", budget), []).append(lr)
                    shown = (f"; shown {check['low']:.2f}-{check['high']:.2f}, true balanced "
                             f"{check['true_balanced']:.3f} {'in' if check['covered'] else 'OUT'}"
                             if check["covered"] is not None else "; no estimate")
                    say(f"{embedding} {strategy} seed {run_seed}: {len(revealed)} labels -> accuracy {acc:.3f}{shown}")
                return on_budget

            for strategy in strategies:
                seeds = [seed + k for k in range(random_seeds)] if strategy == "random" else [seed]
                table: dict[int, list[float]] = {}
                counts: dict[int, int] = {}
                for s in seeds:
                    simulate(strategy, features_at, y, budgets, s, round_size, score(strategy, s, table, counts))
                for b in budgets:
                    mine = [c for c in checks if (c["embedding"], c["strategy"], c["budget"]) == (embedding, strategy, b)]
                    results.append({"embedding": embedding, "strategy": strategy, "budget": b,
                                    "labels": counts[b], **_mean_row(table[b]), **row_fields(mine)})
        if "random" not in strategies:  # the raw-pixel reference always uses random picks
            for k in range(random_seeds):
                simulate("random", fixed(raw), y, budgets, seed + k, round_size,
                         lambda b, r, f, s=seed + k: base.setdefault((f"{cheap}-random", b), []).append(
                             accuracy(sklearn_predict("lr", raw, r, y[r], s), y, r)))
        simulate("typiclust", fixed(raw), y, budgets, seed, round_size,
                 lambda b, r, f: base.setdefault((f"{cheap}-typical", b), []).append(
                     accuracy(sklearn_predict("lr", raw, r, y[r], seed), y, r)))
        baselines = [{"name": name, "budget": budget, **_mean_row(values)}
                     for (name, budget), values in sorted(base.items(), key=lambda kv: (kv[0][0], kv[0][1]))]
        return {"results": results, "baselines": baselines, "pretrain": pretrain_info,
                "coverage": {**summary(checks), "checks": checks}}
    finally:
        if ws is not None:
            ws.store.close()
        if tmp is not None:
            tmp.cleanup()
