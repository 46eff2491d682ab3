#!/usr/bin/env bash
# Runs the SQL driver benchmark (bench/sql.py): SELECT 1 round trips and a
# 1M-row fetch through databricks-sql-connector's Thrift backend, the
# Statement Execution API and DuckDB's own Python client. Uses an existing
# tarn build (release if newer than the debug one); it builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
venv=$(venv_for bench/sql-requirements.txt bench-sql)
exec "$venv/bin/python" bench/sql.py "$@"
