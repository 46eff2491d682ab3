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

# A PostgreSQL server of Debian's package on a free loopback port, in a
# directory of its own that goes when the calling script exits; exports
# TARN_TEST_DATABASE_URL (its superuser `tarn`, no password) for the tests.
start_postgres() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -z "$bin" ]; then
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        echo "installing system packages: postgresql"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    fi
    # initdb refuses to run as root: the server then runs as `postgres`.
    local as=()
    [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
    PG_DIR=$(mktemp -d /tmp/tarn-postgres.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as[@]}" "$bin/initdb" -D "$PG_DIR/data" -A trust -U tarn >/dev/null
    "${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
        -o "-k $PG_DIR -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
    PG_CTL=("${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data")
    trap 'stop_postgres' EXIT
    export TARN_TEST_DATABASE_URL="postgres://tarn@127.0.0.1:$port/postgres"
}

stop_postgres() {
    [ -n "${PG_DIR:-}" ] || return 0
    "${PG_CTL[@]}" stop -m fast >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    PG_DIR=""
}
