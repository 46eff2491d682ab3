#!/usr/bin/env bash
# Runs the capacity benchmark (bench/capacity.py): what one tarn replica
# sustains per API family under concurrent clients (wrk). Uses an existing
# tarn build (release if newer than the debug one); it builds nothing.
# Arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
if ! command -v wrk >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
venv=$(venv_for bench/capacity-requirements.txt bench-capacity)
exec "$venv/bin/python" bench/capacity.py "$@"
