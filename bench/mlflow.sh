#!/usr/bin/env bash
# Runs the MLflow tracking benchmark (bench/mlflow.py): tarn against the
# Python `mlflow server`. Uses an existing tarn build (release if newer than
# the debug one); it builds nothing. Arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
venv=$(venv_for bench/mlflow-requirements.txt bench-mlflow)
exec "$venv/bin/python" bench/mlflow.py "$@"
