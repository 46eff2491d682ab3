#!/usr/bin/env bash
# Runs the runtimes benchmark (bench/runtimes.py): building the 16.4 LTS
# runtime with a cold and a warm uv cache, cluster create on a built runtime,
# cluster libraries and %pip install. Uses an existing tarn binary (release if
# newer than the debug one, or --tarn-bin); it builds nothing. The cold build
# fills a uv cache of about 1.1 GiB from PyPI. Arguments go to the script (--clusters N, --ml).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
venv=$(venv_for bench/runtimes-requirements.txt bench-runtimes)
exec "$venv/bin/python" bench/runtimes.py "$@"
