#!/usr/bin/env bash
# Builds tarn in release mode and runs the cluster benchmark against it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_system_packages
venv=$(venv_for tests/python/requirements.txt test)
cargo build --release --locked --bin tarn
TARN_BIN="$CARGO_TARGET_DIR/release/tarn" "$venv/bin/python" bench/clusters.py
