"""Plot `sslapp bench label-efficiency --json` outputs: accuracy against number of labels.

    python benchmarks/plot_label_efficiency.py OUT.png mnist=mnist.json cifar10=cifar10.json ...

Also prints a markdown table per dataset (for docs/benchmarks.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SHOWN = {  # series -> (label, style)
    "auto": ("auto picks, app classifier", "C0-o"),
    "random": ("random picks, app classifier", "C1-s"),
    "embeddings-rf-random": ("random forest on embeddings, random picks", "C2--^"),
    "embeddings-rf-auto": ("random forest on embeddings, auto picks", "C2:v"),
    "raw-pixels-random": ("raw pixels PCA-50 + LR, random picks", "C3--x"),
    "raw-pixels-typical": ("raw pixels PCA-50 + LR, typical picks", "C3:+"),
}


def series(data: dict) -> dict[str, list[tuple[int, float, float]]]:
    out: dict[str, list[tuple[int, float, float]]] = {}
    for r in data["results"]:
        out.setdefault(r["strategy"], []).append((r["labels"], r["accuracy"], r.get("accuracy_std", 0.0)))
    for b in data["baselines"]:
        out.setdefault(b["name"], []).append((b["budget"], b["accuracy"], b.get("accuracy_std", 0.0)))
    return out


def table(name: str, data: dict) -> str:
    s = series(data)
    budgets = sorted({b for rows in s.values() for b, _, _ in rows})
    lines = [f"**{name}** (pretraining: {data['pretrain']['method']}, {data['pretrain']['seconds']} s)", "",
             "| picks / classifier | " + " | ".join(f"{b} labels" for b in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for key, (label, _) in SHOWN.items():
        if key not in s:
            continue
        cells = {b: (a, sd) for b, a, sd in s[key]}
        lines.append(f"| {label} | " + " | ".join(
            (f"{cells[b][0]:.3f}" + (f" ± {cells[b][1]:.3f}" if cells[b][1] else "")) if b in cells else "-"
            for b in budgets) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, pairs = Path(argv[0]), [a.split("=", 1) for a in argv[1:]]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4), squeeze=False)
    for ax, (name, path) in zip(axes[0], pairs, strict=True):
        data = json.loads(Path(path).read_text())
        s = series(data)
        for key, (label, style) in SHOWN.items():
            if key in s:
                xs, ys, sd = zip(*sorted(s[key]), strict=True)
                ax.errorbar(xs, ys, yerr=sd, fmt=style, label=label, capsize=3, ms=4)
        ax.set_xscale("log")
        ax.set_xlabel("labels")
        ax.set_ylabel("accuracy on never-revealed images")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        print(table(name, data) + "\n")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
