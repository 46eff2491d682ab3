#!/usr/bin/env bash
# Runs the lakehouse benchmark (bench/lakehouse.py) against an existing tarn
# binary; it builds nothing. Arguments go to the script, e.g.
#   bench/lakehouse.sh --rows 10000000 --json lakehouse.json
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
command -v java >/dev/null || echo "warning: no java on PATH; Spark local mode needs Java 17 (apt-get install openjdk-17-jre-headless)" >&2
need_tarn_build
echo "uses an existing tarn build (release if present, else debug; --tarn-bin to choose);" \
     "to rebuild: CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release -p tarn" >&2
venv=$(venv_for bench/lakehouse-requirements.txt bench-lake)
exec "$venv/bin/python" bench/lakehouse.py "$@"
