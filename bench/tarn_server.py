"""Starting a `tarn serve` for a benchmark: which binary, ephemeral ports,
quiet logs (or, with `TARN_BENCH_LOG=<file>`, its info log in that file)."""

import os
import re
import subprocess
import sys
from pathlib import Path


def start_tarn(binary: str, home: Path, env_dir: Path, extra_env: dict | None = None):
    """Starts tarn with its state in `home`; returns (process, API URL)."""
    log = os.environ.get("TARN_BENCH_LOG")
    level = "info,tower_http=warn,deltalake_core=warn" if log else "warn"
    env = dict(os.environ, TARN_HOME=str(home), TARN_ENV_DIR=str(env_dir), RUST_LOG=level, **(extra_env or {}))
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        env["TARN_UV"] = str(uv)
    proc = subprocess.Popen(
        [binary, "serve", "--port", "0", "--spark-connect-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(log, "ab") if log else subprocess.DEVNULL,
    )
    while True:
        line = proc.stdout.readline().decode()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}"
        if not line:
            raise RuntimeError("tarn did not start")


def tarn_binary(explicit=None) -> str:
    """`explicit`, else the release build if it is newer than the debug one."""
    if explicit:
        return explicit
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"
    target = Path(os.environ.get("CARGO_TARGET_DIR", cache / "target"))
    release, debug = target / "release" / "tarn", target / "debug" / "tarn"
    fresh = release.exists() and (not debug.exists() or release.stat().st_mtime >= debug.stat().st_mtime)
    return str(release if fresh else debug)
