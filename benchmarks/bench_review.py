"""Likely label errors on planted flips: how many the review finds, and how many right labels it flags.

    .venv/bin/python benchmarks/bench_review.py --few                 # the labels users have (issue 22)
    .venv/bin/python benchmarks/bench_review.py                       # mnist and cifar10, 400 labels, 5% flipped
    .venv/bin/python benchmarks/bench_review.py --sets cifar10 --seeds 1 --labels 200 --embeddings patches
    .venv/bin/python benchmarks/bench_review.py --sweep               # routes at 3..12 labels per class

For each dataset a seeded class-stratified pool of images becomes a workspace
(`sslapp.bench.data.workspace_from_arrays`, cache at the images' own size, mnist as 3 equal channels), and the app's starting
encoders embed it (`sslapp.features.service`: ImageNet EfficientNet-Lite0, the patch dictionary, pixel PCA).

--few (the default pool is 600 images, 60 a class; seeds start at 100, away from the seeds 0-9 the
margin was chosen on): per seed two labellings of the pool, each with 3 labels moved to a random
other class: "5 a class" (50 labels) and "one big class" (30 labels of one class, 4 of each other, 66
labels; the big class turns with the seed). The rest of the pool is unlabelled, as in the app. Both
the review as it was before issue 22 (`previous_review`: the kNN vote among the labels alone below 3
labels a class, else the mean of it and the probe; every label whose best class is another is listed)
and the review now (`sslapp.curate.label_issues.review_labels`: Poisson learning over the graph of
all items, calibrated, listed only at FLAG_ODDS) are scored on what a person sees: the planted flips
among the 8 listed first (the Train page shows 8), the right labels among those 8, and the right
labels listed in all ("N labels may be wrong"). Per embedding, and "app's pick": the embedding the
app would use for those labels (`sslapp.features.choose.choose`, measured on the noisy labels).

Default mode: all --labels of the pool labelled, --flip of them flipped; precision of the first 20 and 40 of:
- ours: `sslapp.curate.label_issues` on each route with each quality method, and as the app runs it;
- cleanlab: its documented default, out-of-fold probabilities of scikit-learn's LogisticRegression
  (`cross_val_predict`, 5 folds) and `cleanlab.filter.find_label_issues(..., return_indices_ranked_by=
  "self_confidence")`, which lists only the labels it flags (a short list counts misses as wrong);
- random: the expected precision of a random order (= the flip rate).
With 20 flips, P@40 is at most 0.5. `--sweep` compares the routes at few labels per class (10% flipped,
R-precision: flips among the first #flips). Prints the load average first and last.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUALITIES = ("normalized_margin", "self_confidence")


def pool(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded class-stratified subset of n images (N, S, S, 3) uint8 and their true classes."""
    from benchmarks.data import datasets_root

    images = np.load(datasets_root() / name / "images.npy", mmap_mode="r")
    labels = np.load(datasets_root() / name / "labels.npy")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = n // len(classes)
    keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per] for c in classes]))
    x = np.asarray(images[keep])
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x, labels[keep].astype(np.int64)


def embed(name: str, images: np.ndarray, kinds: list[str], work: Path) -> dict[str, np.ndarray]:
    """The app's starting encoders' features of `images` (store order = array order)."""
    from sslapp.bench.data import workspace_from_arrays
    from sslapp.features.read import encoders
    from sslapp.features.service import ensure_starting_encoders, features_for
    from sslapp.workspace import open_workspace

    path = work / f"ws-{name}-{len(images)}"
    ws = open_workspace(path) if (path / "sslapp.db").exists() else workspace_from_arrays(path, images)
    ws.store.set_setting("features.starts", kinds)
    ensure_starting_encoders(ws)
    starts = {(a.get("meta") or {}).get("start"): a for a in encoders(ws)}
    out = {}
    for kind in kinds:
        t = time.monotonic()
        out[kind] = features_for(ws, starts[kind]).features
        print(f"  {name} {kind}: {out[kind].shape} in {time.monotonic() - t:.1f}s", flush=True)
    return out


def flip(labels: np.ndarray, rate: float, n_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, indices flipped): round(rate * N) labels moved to a random other class."""
    noisy = labels.copy()
    idx = rng.choice(len(labels), int(round(rate * len(labels))), replace=False)
    noisy[idx] = (labels[idx] + rng.integers(1, n_classes, len(idx))) % n_classes
    return noisy, idx


def precision_at(ranked: np.ndarray, flipped: np.ndarray, k: int) -> float:
    return len(np.intersect1d(np.asarray(ranked)[:k], flipped)) / k


def cleanlab_default(features: np.ndarray, noisy: np.ndarray, seed: int) -> np.ndarray:
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    proba = cross_val_predict(LogisticRegression(max_iter=1000), features, noisy, cv=folds, method="predict_proba")
    return find_label_issues(noisy, proba, return_indices_ranked_by="self_confidence")


def routes(feats: np.ndarray, noisy: np.ndarray, n_classes: int, seed: int) -> dict[str, np.ndarray]:
    """Out-of-fold probabilities of each route: the probe, kNN, and their mean (the "ensemble")."""
    from sslapp.curate.label_issues import oof_probabilities

    out = {r: oof_probabilities(feats, noisy, n_classes, r, seed)[0] for r in ("probe", "knn", "graph")}
    out["ensemble"] = (out["probe"] + out["knn"]) / 2
    return out


def compare(feats: np.ndarray, truth: np.ndarray, rate: float, seeds: int, ks: tuple[int, ...]) -> dict[str, list]:
    from sslapp.curate.label_issues import rank_from_probabilities, review_labels

    n_classes = int(truth.max() + 1)
    rows: dict[str, list] = {}
    for seed in range(seeds):
        noisy, flipped = flip(truth, rate, n_classes, np.random.default_rng(1000 + seed))
        ranked = {}
        probs = routes(feats, noisy, n_classes, seed)
        for route, proba in probs.items():
            for quality in QUALITIES:
                ranked[f"ours {route} {quality}"] = rank_from_probabilities(noisy, proba, quality).order
        ranked["ours (auto, as the app runs it)"] = review_labels(feats, noisy, seed).order
        ranked["before issue 22 (auto)"] = previous_review(feats, noisy, n_classes, seed)[0]
        ranked["cleanlab find_label_issues (LogReg CV)"] = cleanlab_default(feats, noisy, seed)
        for name, r in ranked.items():
            rows.setdefault(name, []).append([precision_at(r, flipped, k) for k in ks])
        rows.setdefault("random", []).append([len(flipped) / len(truth)] * len(ks))
    return rows


def previous_review(feats: np.ndarray, noisy: np.ndarray, n_classes: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(order, listed) of the review before issue 22, kept to compare with: the kNN vote among the
    labels alone when a checked class had fewer than 3 labels (or fewer than 3 a class on average),
    else its mean with the probe (StratifiedKFold), cleanlab's self-confidence on the raw
    probabilities, and every label whose most likely class was another listed as "looks wrong"."""
    from cleanlab.rank import get_label_quality_scores
    from sklearn.model_selection import StratifiedKFold

    from sslapp.curate.label_issues import knn_probabilities
    from sslapp.estimators.linear import LinearProbe

    counts = np.bincount(noisy, minlength=n_classes)
    checked_rows = np.flatnonzero(counts[noisy] >= 2)
    knn = knn_probabilities(feats, noisy, n_classes)
    checked = counts[counts >= 2]
    if checked.min() < 3 or counts[counts > 0].mean() < 3:
        proba = knn
    else:
        always = np.flatnonzero(counts[noisy] < 2)
        k = int(max(2, min(5, counts[noisy[checked_rows]].min())))
        probe = np.full((len(noisy), n_classes), np.nan)
        for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(checked_rows, noisy[checked_rows]):
            train = np.concatenate([checked_rows[tr], always])
            fit = LinearProbe(n_classes, seed=seed).fit(feats[train], noisy[train])
            probe[checked_rows[te]] = fit.predict_proba(feats[checked_rows[te]])
        proba = (probe + knn) / 2
    ok = ~np.isnan(proba).any(axis=1)
    scores = np.full(len(noisy), np.nan)
    p = np.clip(proba[ok], 0, 1)
    scores[ok] = 1.0 - get_label_quality_scores(noisy[ok], p / p.sum(axis=1, keepdims=True), method="self_confidence")
    order = np.lexsort((np.arange(len(noisy)), -np.nan_to_num(scores, nan=-1.0)))
    listed = np.zeros(len(noisy), bool)
    listed[ok] = proba[ok].argmax(axis=1) != noisy[ok]
    return order, listed


FEW_SHOWN = 8  # the Train page shows the first 8 listed
FEW_SEED0 = 100  # the margin (FLAG_ODDS) was chosen on seeds 0-9 of the same draws
FEW_FLIPS = 3


def few_labelling(truth: np.ndarray, scenario: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows of the pool labelled, their labels with FEW_FLIPS moved to another class, which were moved)."""
    rng = np.random.default_rng(seed)
    n_classes = int(truth.max() + 1)
    per = {c: 5 for c in range(n_classes)} if scenario == "5 a class" else \
        {c: (30 if c == seed % n_classes else 4) for c in range(n_classes)}
    rows = np.concatenate([rng.permutation(np.flatnonzero(truth == c))[:per[c]] for c in range(n_classes)])
    labels = truth[rows].copy()
    flipped = rng.choice(len(rows), FEW_FLIPS, replace=False)
    labels[flipped] = (labels[flipped] + rng.integers(1, n_classes, FEW_FLIPS)) % n_classes
    return rows, labels, flipped


def shown(order: np.ndarray, listed: np.ndarray, flipped: np.ndarray) -> tuple[int, int, int]:
    """(flips among the first FEW_SHOWN listed, right labels among them, right labels listed in all)."""
    first = [int(r) for r in order if listed[r]][:FEW_SHOWN]
    found = len(set(first) & {int(f) for f in flipped})
    return found, len(first) - found, int(listed.sum()) - int(listed[flipped].sum())


def few_labels(name: str, feats: dict[str, np.ndarray], truth: np.ndarray, seeds: int, order: tuple[str, ...]) -> None:
    """Both reviews on the two few-label labellings, per embedding and on the app's pick; prints a table."""
    from sslapp.curate.label_issues import review_labels
    from sslapp.features.choose import choose, prior_index

    kinds = list(feats)
    n_classes = int(truth.max() + 1)
    for scenario in ("5 a class", "one big class"):
        tally: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
        picks = []
        for seed in range(FEW_SEED0, FEW_SEED0 + seeds):
            rows, noisy, flipped = few_labelling(truth, scenario, seed)
            others = np.setdiff1d(np.arange(len(truth)), rows)
            pick = kinds[choose([feats[k] for k in kinds], rows, noisy, prior_index(kinds, order), kinds).index]
            picks.append(pick)
            for kind in kinds:
                f = feats[kind]
                before = previous_review(f[rows], noisy, n_classes, seed)
                now = review_labels(f[rows], noisy, seed, n_classes=n_classes, unlabelled=f[others])
                for who, (order, listed) in (("before", before), ("now", (now.order, now.flagged))):
                    result = shown(order, listed, flipped)
                    tally.setdefault((kind, who), []).append(result)
                    if kind == pick:
                        tally.setdefault(("app's pick", who), []).append(result)
        n = len(rows)
        print(f"  {name}, {scenario} ({n} labels, {FEW_FLIPS} flipped), {seeds} seeds; app's picks: "
              + ", ".join(f"{k} {picks.count(k)}" for k in kinds if picks.count(k)), flush=True)
        print(f"    {'embedding':<12} {'':<7} flips in first {FEW_SHOWN}  right labels in first {FEW_SHOWN}  "
              "right labels listed", flush=True)
        for kind in ["app's pick", *kinds]:
            for who in ("before", "now"):
                v = np.array(tally[(kind, who)])
                print(f"    {kind:<12} {who:<7} {v[:, 0].sum():>3} / {FEW_FLIPS * len(v):<10} {v[:, 1].mean():>12.1f}"
                      f"  {v[:, 2].mean():>18.1f}", flush=True)


def sweep(feats: np.ndarray, truth: np.ndarray, seeds: int) -> None:
    """The routes (each with both quality methods) at few labels per class, 10% flipped."""
    from sslapp.curate.label_issues import rank_from_probabilities

    n_classes = int(truth.max() + 1)
    for per in (3, 5, 8, 12):
        scores: dict[str, list[float]] = {}
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            keep = np.concatenate([rng.permutation(np.flatnonzero(truth == c))[:per] for c in range(n_classes)])
            noisy, flipped = flip(truth[keep], 0.1, n_classes, rng)
            if len(flipped) == 0 or np.bincount(noisy, minlength=n_classes).min() < 2:
                continue
            for route, proba in routes(feats[keep], noisy, n_classes, seed).items():
                for quality in QUALITIES:
                    order = rank_from_probabilities(noisy, proba, quality).order
                    scores.setdefault(f"{route} {quality}", []).append(precision_at(order, flipped, len(flipped)))
        line = "  ".join(f"{k} {np.mean(v):.2f}" for k, v in scores.items())
        print(f"    {per:>2}/class ({len(scores.get('knn self_confidence', []))} runs): {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="mnist,cifar10")
    p.add_argument("--labels", type=int, default=None, help="labelled pool size (default 400; --few: 600)")
    p.add_argument("--flip", type=float, default=0.05)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--embeddings", default=None, help="default imagenet,patches (--few: and pixels)")
    p.add_argument("--sweep", action="store_true", help="the routes at 3-12 labels per class instead")
    p.add_argument("--few", action="store_true", help="5 labels a class, or one class at 30 and the rest at 4, "
                   "3 flipped: the review before issue 22 against now (default pool 600, all three embeddings)")
    p.add_argument("--work", type=Path, default=None, help="folder for the workspaces (default: a temporary one)")
    args = p.parse_args(argv)
    args.labels = args.labels or (600 if args.few else 400)
    args.embeddings = args.embeddings or ("imagenet,patches,pixels" if args.few else "imagenet,patches")
    print(f"load: {os.getloadavg()}  ({os.cpu_count()} CPUs)  {time.strftime('%Y-%m-%d %H:%M %Z')}", flush=True)
    from sslapp.modalities.image.prior import prior_order

    ks = (20, 40)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for name in args.sets.split(","):
            images, truth = pool(name, args.labels)
            feats = embed(name, images, args.embeddings.split(","), work)
            if args.few:
                few_labels(name, feats, truth, args.seeds, order=prior_order(images))
                continue
            for kind, f in feats.items():
                print(f"{name} / {kind}: {len(truth)} labels, {100 * args.flip:.0f}% flipped, {args.seeds} seeds",
                      flush=True)
                if args.sweep:
                    sweep(f, truth, args.seeds)
                    continue
                t = time.monotonic()
                rows = compare(f, truth, args.flip, args.seeds, ks)
                for method, vals in rows.items():
                    m = np.mean(vals, axis=0)
                    print(f"    {method:<42} " + "  ".join(f"P@{k} {v:.3f}" for k, v in zip(ks, m, strict=True)))
                print(f"    ({time.monotonic() - t:.1f}s)", flush=True)
    print(f"load: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
