#!/usr/bin/env bash
# Runs the execution-context benchmark (bench/contexts.py) against an
# existing tarn binary; it builds nothing. Arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
venv=$(venv_for bench/contexts-requirements.txt bench-contexts)
exec "$venv/bin/python" bench/contexts.py "$@"
