#!/usr/bin/env bash
# Set up (first run only) and start the app at http://localhost:8501.
# The Data page offers the bundled sample dataset in one click.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/streamlit run app.py --server.port "${PORT:-8501}" "$@"
