#!/usr/bin/env bash
# Runs every test: the Rust tests of each crate, then the pytest suite that
# drives a live `tarn serve` through the official clients. Installs what it
# needs; caches (cargo target dir, venvs, tarn environments) live outside the
# clone, under ${XDG_CACHE_HOME:-~/.cache}/tarn.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_system_packages
venv=$(venv_for tests/python/requirements.txt test)

echo "== cargo fmt, clippy"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings
echo "== cargo build"
cargo build --workspace --locked
echo "== cargo test"
cargo test --workspace --locked
echo "== pytest (databricks-sdk against tarn serve)"
export TARN_BIN="$CARGO_TARGET_DIR/debug/tarn"
# A bound, so a hang fails the run instead of eating the CI budget.
timeout 2400 "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider --durations=20 "$@"

# The metadata store again, on PostgreSQL: the store's own tests, then the
# suite with each test server's home given a new database (its tarn.toml).
# The spark backend's and the object store's tests exercise compute and
# storage, not metadata: SQLite's pass has run them.
start_postgres
echo "== cargo test -p tarn-store (PostgreSQL)"
cargo test -p tarn-store --locked -q
echo "== pytest (PostgreSQL)"
timeout 2400 "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider --durations=20 \
    --ignore tests/python/test_spark_backend.py --ignore tests/python/test_s3_storage.py "$@"
