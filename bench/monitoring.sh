#!/usr/bin/env bash
# Runs the data drift benchmark (bench/monitoring.py): a tarn quality
# monitor refresh against Evidently's data drift report on the same data.
# Uses an existing tarn build (release if newer than the debug one;
# --tarn-bin to choose); it builds nothing. Arguments go to the script, e.g.
#   bench/monitoring.sh --reference-rows 1000000 --current-rows 200000 --json monitoring.json
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_tarn_build
venv=$(venv_for bench/monitoring-requirements.txt bench-monitoring)
exec "$venv/bin/python" bench/monitoring.py "$@"
