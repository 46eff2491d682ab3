#!/usr/bin/env bash
# Runs the job orchestration benchmark (bench/jobs.py): tarn against Apache
# Airflow 3 standalone (LocalExecutor, SQLite). Uses an existing tarn build
# (release if newer than the debug one); it builds nothing. Arguments go to
# the script (--chain N, --fanout M, --systems tarn,airflow, --json PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
venv=$(venv_for bench/jobs-requirements.txt bench-jobs)
exec "$venv/bin/python" bench/jobs.py "$@"
