#!/usr/bin/env bash
# Runs the data drift benchmark (bench/monitoring.py): a tarn quality
# monitor refresh against Evidently's data drift report on the same data.
# Uses an existing tarn build (release if newer than the debug one;
# --tarn-bin to choose); it builds nothing. Arguments go to the script, e.g.
#   bench/monitoring.sh --reference-rows 1000000 --current-rows 200000 --json monitoring.json
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
if [ ! -x "$CARGO_TARGET_DIR/release/tarn" ] && [ ! -x "$CARGO_TARGET_DIR/debug/tarn" ]; then
    echo "no tarn binary under $CARGO_TARGET_DIR; build one first:" >&2
    echo "  CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release -p tarn" >&2
    exit 1
fi
venv=$(venv_for bench/monitoring-requirements.txt bench-monitoring)
exec "$venv/bin/python" bench/monitoring.py "$@"
