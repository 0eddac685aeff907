"""The active-learning strategies a user can pick, by name (imports no strategy until one is used)."""

from __future__ import annotations

from sslapp.registry import Entry, Registry

_S = "sslapp.select"
# defaults: the constructor options a strategy runs with unless `select(..., options=...)` says otherwise.
STRATEGIES = Registry("strategy", [
    Entry("auto", "typical picks while labels are scarce, then uncertain and diverse ones", f"{_S}.auto:AutoStrategy",
          {"switch": 5.0, "late": "margin-diverse"}),
    Entry("typiclust", "TypiClust: the most typical item of each uncovered cluster", f"{_S}.typiclust:TypiClustStrategy",
          {"k": 20}),
    Entry("probcover", "ProbCover: cover the data with balls of one radius", f"{_S}.probcover:ProbCoverStrategy",
          {"max_rows": 3000, "alpha": 0.95}),
    Entry("margin", "margin: where the top two classes are closest", f"{_S}.margin:MarginStrategy"),
    Entry("entropy", "entropy: the most spread-out class distribution", f"{_S}.entropy:EntropyStrategy"),
    Entry("badge", "BADGE: k-means++ on gradient embeddings", f"{_S}.badge:BadgeStrategy",
          {"dims": 64, "max_rows": 4000}),
    Entry("coreset", "core-set: farthest-first from the labelled items", f"{_S}.coreset:CoreSetStrategy"),
    Entry("random", "random picks, the baseline", f"{_S}.random_sampling:RandomStrategy"),
])
# What a model-based strategy does when there is no model yet (fewer than two classes labelled).
NO_MODEL_FALLBACK = "typiclust"
