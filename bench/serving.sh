#!/usr/bin/env bash
# Runs the model serving benchmark (bench/serving.py): tarn's endpoints
# against `mlflow models serve` on this machine. Uses an existing tarn build
# (release if newer than the debug one; --tarn-bin to choose); it builds
# nothing. Arguments go to the script, e.g.
#   bench/serving.sh --requests 2000 --seconds 15 --json serving.json
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_tarn_build
venv=$(venv_for bench/serving-requirements.txt bench-serving)
exec "$venv/bin/python" bench/serving.py "$@"
