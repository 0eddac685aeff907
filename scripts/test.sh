#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: lint, unit, worker, training and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium; browser tests will be skipped" >&2
fi
.venv/bin/ruff check sslapp tests benchmarks app.py
exec .venv/bin/python -m pytest -q -n 2 --dist loadgroup "$@"
