#!/usr/bin/env bash
# Sets up and runs a tarn workspace on embedded defaults: builds tarn,
# prepares its Python runtime (with uv), and serves the Databricks API on
# http://127.0.0.1:8080 with state under ./.tarn. Extra arguments go to
# `tarn serve` (e.g. --port 9090).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_system_packages
tools=$(venv_for scripts/tools-requirements.txt tools)
export TARN_UV="$tools/bin/uv"

cargo build --release --locked --bin tarn
tarn="$CARGO_TARGET_DIR/release/tarn"
"$tarn" env sync
exec "$tarn" serve "$@"
