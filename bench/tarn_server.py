"""Starting a `tarn serve` for a benchmark: ephemeral ports, quiet logs."""

import os
import re
import subprocess
import sys
from pathlib import Path


def start_tarn(binary: str, home: Path, env_dir: Path):
    """Starts tarn with its state in `home`; returns (process, API URL)."""
    env = dict(os.environ, TARN_HOME=str(home), TARN_ENV_DIR=str(env_dir), RUST_LOG="warn")
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        env["TARN_UV"] = str(uv)
    proc = subprocess.Popen(
        [binary, "serve", "--port", "0", "--spark-connect-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    while True:
        line = proc.stdout.readline().decode()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}"
        if not line:
            raise RuntimeError("tarn did not start")
