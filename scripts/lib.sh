# Shared by scripts/*.sh: cache locations outside the clone, and the system
# packages the build needs.

TARN_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tarn"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TARN_CACHE/target}"
export TARN_ENV_DIR="${TARN_ENV_DIR:-$TARN_CACHE/envs}"

need_system_packages() {
    local missing=()
    command -v protoc >/dev/null || missing+=(protobuf-compiler)
    command -v python3 >/dev/null || missing+=(python3 python3-venv)
    command -v cc >/dev/null || missing+=(build-essential)
    # The tests of tarn's pages (and the drift report's) drive headless Chromium.
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    # Clusters on the spark backend run Apache Spark, a JVM program.
    command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing system packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A venv under the cache named by the hash of its requirements file; prints its path.
venv_for() {
    local requirements="$1" name="$2"
    local hash
    hash=$(sha256sum "$requirements" | cut -c1-12)
    local dir="$TARN_CACHE/venvs/$name-$hash"
    if [ ! -f "$dir/.ready" ]; then
        rm -rf "$dir"
        python3 -m venv "$dir" >&2
        "$dir/bin/pip" install -q --disable-pip-version-check uv >&2
        "$dir/bin/uv" pip install -q --python "$dir/bin/python" -r "$requirements" >&2
        touch "$dir/.ready"
    fi
    echo "$dir"
}

# Benchmarks use an existing tarn build and build nothing: stop with the
# command to build one when there is none.
need_tarn_build() {
    if [ ! -x "$CARGO_TARGET_DIR/release/tarn" ] && [ ! -x "$CARGO_TARGET_DIR/debug/tarn" ]; then
        echo "no tarn binary under $CARGO_TARGET_DIR; build one first:" >&2
        echo "  CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release -p tarn" >&2
        exit 1
    fi
}
