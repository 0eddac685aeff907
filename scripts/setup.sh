#!/usr/bin/env bash
# Create .venv in the repo root and install sslapp into it (idempotent: reinstalls only when
# pyproject.toml or constraints.txt changed; constraints.txt pins every library's version, so a fresh
# venv runs what the suite and the benchmarks ran). pip takes torch and torchvision from this
# machine's disk when they lie there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.sslapp-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -c constraints.txt -e '.[test]'
  # compile UMAP's numba code once now, into its disk cache (sslapp/numba_cache.py): the app's
  # first map and suggestions, and every test process, then load it instead of compiling it again
  OMP_NUM_THREADS=1 .venv/bin/python -c "from sslapp.jobs.registry import CACHED_WARM_UPS, warm_ups
for name, run in warm_ups(CACHED_WARM_UPS): run()" || echo "UMAP's numba warm-up failed; the first map will compile it instead" >&2
  echo "$want" > "$stamp"
fi
