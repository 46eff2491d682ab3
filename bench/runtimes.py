"""Runtimes: building Databricks Runtime 16.4 LTS's Python environment, and
what a built one costs afterwards.

Measured, in one run (all state in one temporary directory, removed at the end):
1. `tarn env sync --runtime 16.4.x-scala2.12` into a fresh TARN_ENV_DIR with a
   fresh uv cache (cold: everything from PyPI), then into another fresh
   TARN_ENV_DIR with the same uv cache (warm); wall time and the size (du) of
   each. `--ml` does the same for 16.4.x-cpu-ml-scala2.12 with
   TARN_ML_DEEP_LEARNING=false.
2. On the warm-built runtime: clusters.create until clusters.get says RUNNING
   (polled every 50 ms), N times, each cluster permanently deleted after.
3. Cluster libraries: a PyPI library installed on a running cluster, from the
   install call until cluster_status says INSTALLED (polled every 50 ms).
4. `%pip install` in an execution context, and the first command after it
   (the context's Python restarted over its own overlay).
5. The warm create against start times Databricks documents.

Commands are polled every 50 ms here rather than with execute_and_wait, whose
waiter sleeps 1 s and more between polls.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from tarn_server import start_tarn, tarn_binary  # noqa: E402

STANDARD = "16.4.x-scala2.12"
ML = "16.4.x-cpu-ml-scala2.12"
LIBRARIES = ["tabulate==0.9.0", "simplejson==3.19.3"]  # not in the standard runtime
PIP_PACKAGE = "humanize==4.11.0"  # in no 16.4 runtime list
POLL = 0.05
GOAL_CREATE_S = 2.0

# What Databricks documents (text constants, quoted from the pages named).
DATABRICKS = [
    ("serverless jobs, standard mode", 240, 360,
     '"Workloads typically start within 4 to 6 minutes"',
     "https://docs.databricks.com/gcp/en/compute/serverless/performance-modes"),
    ("serverless jobs, performance-optimized", 60, 60,
     '"workloads typically start in less than a minute"',
     "https://docs.databricks.com/gcp/en/compute/serverless/performance-modes"),
    ("serverless SQL warehouse", 2, 6,
     '"Rapid startup time (typically between 2 and 6 seconds)"',
     "https://docs.databricks.com/compute/sql-warehouse/warehouse-types.html"),
]
POOLS_URL = "https://docs.databricks.com/clusters/instance-pools/index.html"


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], check=True, capture_output=True, text=True).stdout.split()[0])


def uv_bin() -> str:
    return str(Path(sys.executable).parent / "uv")


def env_sync(binary, key, tmp: Path, name, uv_cache: Path, deep_learning=True):
    """`tarn env sync --runtime key` into a fresh env root; (seconds, bytes, root)."""
    home, root = tmp / f"home-{name}", tmp / f"envs-{name}"
    home.mkdir()
    env = dict(os.environ, TARN_HOME=str(home), TARN_ENV_DIR=str(root), TARN_UV=uv_bin(),
               UV_CACHE_DIR=str(uv_cache), RUST_LOG="warn")
    if not deep_learning:
        env["TARN_ML_DEEP_LEARNING"] = "false"
    started = time.perf_counter()
    done = subprocess.run([binary, "env", "sync", "--runtime", key], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"tarn env sync --runtime {key} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, du(root), root


def builds(binary, tmp: Path, ml: bool):
    """Cold then warm build of each runtime; rows, and the standard warm env root."""
    rows, warm_root = [], None
    for key, deep in [(STANDARD, True)] + ([(ML, False)] if ml else []):
        cache = tmp / f"uv-cache-{key}"
        label = key + (" (no deep learning)" if not deep else "")
        cold_s, cold_b, _ = env_sync(binary, key, tmp, f"{key}-cold", cache, deep)
        cache_b = du(cache)
        warm_s, warm_b, root = env_sync(binary, key, tmp, f"{key}-warm", cache, deep)
        rows.append((f"env sync {label}, cold uv cache", f"{cold_s:7.1f} s", f"env {cold_b / 2**30:.2f} GiB, uv cache {cache_b / 2**30:.2f} GiB"))
        rows.append((f"env sync {label}, warm uv cache", f"{warm_s:7.1f} s", f"env {warm_b / 2**30:.2f} GiB"))
        if key == STANDARD:
            warm_root = (root, cache)
    return rows, warm_root


def poll(fn, what, timeout=900):
    """Calls fn every POLL seconds until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(POLL)
    raise TimeoutError(f"{what}: not done after {timeout} s")


def running(w, cluster_id):
    c = w.clusters.get(cluster_id)
    if c.state.value in ("TERMINATED", "ERROR"):
        raise RuntimeError(f"cluster {cluster_id} {c.state.value}: {c.state_message} {c.termination_reason}")
    return c.state.value == "RUNNING"


def create_cluster(w):
    """(cluster id, seconds from the create call until RUNNING)."""
    started = time.perf_counter()
    cluster_id = w.clusters.create(cluster_name="bench-runtimes", spark_version=STANDARD, num_workers=0).cluster_id
    poll(lambda: running(w, cluster_id), f"cluster {cluster_id} RUNNING")
    return cluster_id, time.perf_counter() - started


def library_install(w, cluster_id, package):
    """Seconds from libraries.install until cluster_status says INSTALLED."""
    from databricks.sdk.service.compute import Library, PythonPyPiLibrary

    def installed():
        for s in w.libraries.cluster_status(cluster_id):
            if s.library.pypi and s.library.pypi.package == package:
                if s.status.value == "FAILED":
                    raise RuntimeError(f"{package}: FAILED {s.messages}")
                return s.status.value == "INSTALLED"
        return False

    started = time.perf_counter()
    w.libraries.install(cluster_id, [Library(pypi=PythonPyPiLibrary(package=package))])
    poll(installed, f"{package} INSTALLED")
    return time.perf_counter() - started


def run_command(w, cluster_id, context_id, code):
    """(seconds, result data) of one command, polled every POLL seconds."""
    from databricks.sdk.service.compute import Language

    started = time.perf_counter()
    command_id = w.command_execution.execute(cluster_id=cluster_id, context_id=context_id,
                                             language=Language.PYTHON, command=code).command_id

    def finished():
        s = w.command_execution.command_status(cluster_id, context_id, command_id)
        return s if s.status.value in ("Finished", "Error", "Cancelled") else None

    status = poll(finished, f"command {code!r}")
    seconds = time.perf_counter() - started
    results = status.results
    if status.status.value != "Finished" or (results and results.result_type and results.result_type.value == "error"):
        raise RuntimeError(f"{code!r}: {status.status.value} {results.cause if results else ''} {results.summary if results else ''}")
    return seconds, results.data if results else None


def pip_in_context(w, cluster_id):
    """Seconds of `%pip install PIP_PACKAGE`, of the first command after, and a plain one before."""
    from databricks.sdk.service.compute import Language

    context_id = w.command_execution.create_and_wait(cluster_id=cluster_id, language=Language.PYTHON).id
    try:
        run_command(w, cluster_id, context_id, "1+1")  # the context's Python answers
        before, _ = run_command(w, cluster_id, context_id, "1+1")
        pip, _ = run_command(w, cluster_id, context_id, f"%pip install {PIP_PACKAGE}")
        name, version = PIP_PACKAGE.split("==")
        after, data = run_command(w, cluster_id, context_id, f"import {name}; {name}.__version__")
        if version not in str(data):
            raise RuntimeError(f"after %pip install {PIP_PACKAGE}: {name}.__version__ is {data!r}")
    finally:
        w.command_execution.destroy(cluster_id, context_id)
    return before, pip, after


def on_built_runtime(binary, tmp: Path, env_root: Path, uv_cache: Path, n: int):
    """Steps 2-4 against one tarn serve whose TARN_ENV_DIR holds the built runtime."""
    from databricks.sdk import WorkspaceClient

    os.environ["UV_CACHE_DIR"] = str(uv_cache)  # tarn's installs use the warm cache too
    home = tmp / "home-serve"
    home.mkdir()
    proc, url = start_tarn(binary, home, env_root)
    try:
        w = WorkspaceClient(host=url, token=(home / "token").read_text().strip(), auth_type="pat")
        creates = []
        for _ in range(n):
            cluster_id, seconds = create_cluster(w)
            creates.append(seconds)
            w.clusters.permanent_delete(cluster_id)
        cluster_id, _ = create_cluster(w)
        installs = [(p, library_install(w, cluster_id, p)) for p in LIBRARIES]
        pip = pip_in_context(w, cluster_id)
        w.clusters.permanent_delete(cluster_id)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return creates, installs, pip


def report(rows, creates, installs, pip):
    p50, worst = statistics.median(creates), max(creates)
    goal = "met" if p50 < GOAL_CREATE_S else "NOT met"
    rows = rows + [
        (f"cluster create -> RUNNING, built runtime (n={len(creates)})", f"{p50:7.2f} s",
         f"p50; max {worst:.2f} s; goal < {GOAL_CREATE_S:g} s: {goal}"),
    ]
    rows += [(f"cluster library {p} -> INSTALLED", f"{s:7.2f} s", "running cluster, PyPI") for p, s in installs]
    before, pip_s, after = pip
    rows.append((f"%pip install {PIP_PACKAGE} in a context", f"{pip_s:7.2f} s", "execute until Finished"))
    rows.append(("first command after %pip (import it)", f"{after:7.2f} s", f"a `1+1` before %pip: {before * 1000:.0f} ms"))
    width = max(len(r[0]) for r in rows)
    print()
    for name, figure, note in rows:
        print(f"{name:<{width}}  {figure}   {note}")
    print("\nDatabricks' documented start times against tarn's cluster create p50. No figure "
          "found in Databricks' docs for classic clusters; pools \"reduce cluster start and "
          f"auto-scaling times\" ({POOLS_URL}).")
    for label, lo, hi, quote, url in DATABRICKS:
        span = f"{lo}-{hi} s" if lo != hi else f"< {lo} s"
        ratio = f"{lo / p50:.0f}x" if lo == hi else f"{lo / p50:.0f}x to {hi / p50:.0f}x"
        print(f"  {label:<40} {span:>10}  Databricks/tarn {ratio:>12}   {quote}  {url}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarn-bin")
    parser.add_argument("--clusters", type=int, default=5, help="cluster creates to time (default 5)")
    parser.add_argument("--ml", action="store_true", help=f"also build {ML} (TARN_ML_DEEP_LEARNING=false)")
    args = parser.parse_args()
    binary = tarn_binary(args.tarn_bin)
    print(f"tarn binary: {binary}")
    tmp = Path(tempfile.mkdtemp(prefix="tarn-bench-runtimes-"))
    try:
        rows, (env_root, uv_cache) = builds(binary, tmp, args.ml)
        creates, installs, pip = on_built_runtime(binary, tmp, env_root, uv_cache, args.clusters)
        print("cluster creates (s): " + ", ".join(f"{s:.2f}" for s in creates))
        report(rows, creates, installs, pip)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
