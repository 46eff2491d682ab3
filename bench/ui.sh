#!/usr/bin/env bash
# Runs the web UI benchmark (bench/ui.py): tarn's pages over 100k job runs,
# 100k MLflow runs and 10k tables, against the Python MLflow server's answer
# to its own UI's runs table. Uses an existing tarn build (release if newer
# than the debug one); it builds nothing. Arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
venv=$(venv_for bench/ui-requirements.txt bench-ui)
exec "$venv/bin/python" bench/ui.py "$@"
