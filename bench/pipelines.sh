#!/usr/bin/env bash
# Runs the declarative pipelines benchmark (bench/pipelines.py): tarn against
# Spark Declarative Pipelines on Spark local and a DuckDB script. Uses an
# existing tarn build (release if newer than the debug one; --tarn-bin to
# choose); it builds nothing. Arguments go to the script, e.g.
#   bench/pipelines.sh --events 10000000 --files 100 --json pipelines.json
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
command -v java >/dev/null || echo "warning: no java on PATH; Spark needs Java 17 (apt-get install openjdk-17-jre-headless)" >&2
need_tarn_build
venv=$(venv_for bench/pipelines-requirements.txt bench-pipelines)
exec "$venv/bin/python" bench/pipelines.py "$@"
