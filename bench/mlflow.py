"""MLflow tracking: tarn against the Python `mlflow server` (SQLite backend).

Both servers run on this machine in the same run and get the same load over
the REST API (requests, one keep-alive session per thread):
- log-metric, sequential and from 8 concurrent clients (processes);
- log-batch of 100 metrics;
- runs/create;
- runs/search over N runs (default 100,000) with a metric filter.
The N runs are written straight into each server's SQLite database (its own
schema) before searching, since creating 100,000 runs through the Python
server's API takes longer than the benchmark itself. Prints each ratio.
Goals: at least 30x the Python server's log-metric throughput with 8
threads, and runs/search over 100k runs under 100 ms.
"""

import argparse
import concurrent.futures
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from tarn_server import start_tarn, tarn_binary

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_python_server(work: Path):
    port = free_port()
    db = work / "mlflow.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", str(work / "artifacts")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=work,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return proc, url, db
        except requests.RequestException:
            time.sleep(0.5)
    raise RuntimeError("mlflow server did not start")


class Api:
    def __init__(self, url):
        self.url = url
        self.s = requests.Session()

    def post(self, path, body):
        r = self.s.post(f"{self.url}/api/2.0/mlflow/{path}", json=body, timeout=120)
        r.raise_for_status()
        return r.json()


def rate(n, seconds):
    return n / seconds if seconds else float("inf")


def log_metrics(url, run_id, count, key):
    """log-metric calls on one keep-alive connection (http.client: the
    lightest Python client, so the load generator is not the bottleneck)."""
    import http.client
    import json
    from urllib.parse import urlparse

    target = urlparse(url)
    conn = http.client.HTTPConnection(target.hostname, target.port)
    headers = {"Content-Type": "application/json"}
    for i in range(count):
        body = json.dumps({"run_id": run_id, "key": key, "value": i * 0.5, "timestamp": int(time.time() * 1000), "step": i})
        conn.request("POST", "/api/2.0/mlflow/runs/log-metric", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"log-metric answered {response.status}")
    conn.close()


def _log_metrics_args(args):
    log_metrics(*args)


def measure(url, args):
    api = Api(url)
    exp = api.post("experiments/create", {"name": f"bench-{uuid.uuid4().hex[:6]}"})["experiment_id"]
    run = api.post("runs/create", {"experiment_id": exp, "start_time": int(time.time() * 1000)})["run"]["info"]["run_id"]
    out = {"experiment_id": exp}

    started = time.perf_counter()
    log_metrics(url, run, args.sequential, "seq")
    out["log-metric sequential (req/s)"] = rate(args.sequential, time.perf_counter() - started)

    # Eight clients, each its own process (a thread pool would measure the GIL).
    per_client = args.threaded // 8
    with concurrent.futures.ProcessPoolExecutor(8) as pool:
        list(pool.map(_log_metrics_args, [(url, run, 1, "warm")] * 8))
        started = time.perf_counter()
        list(pool.map(_log_metrics_args, [(url, run, per_client, f"t{t}") for t in range(8)]))
        out["log-metric 8 clients (req/s)"] = rate(per_client * 8, time.perf_counter() - started)

    started = time.perf_counter()
    now = int(time.time() * 1000)
    for b in range(args.batches):
        metrics = [{"key": f"b{k}", "value": random.random(), "timestamp": now, "step": b} for k in range(100)]
        api.post("runs/log-batch", {"run_id": run, "metrics": metrics})
    out["log-batch of 100 (metrics/s)"] = rate(args.batches * 100, time.perf_counter() - started)

    started = time.perf_counter()
    for _ in range(args.creates):
        api.post("runs/create", {"experiment_id": exp, "start_time": int(time.time() * 1000)})
    out["runs/create (req/s)"] = rate(args.creates, time.perf_counter() - started)
    return out


def fill_runs(db: Path, experiment_id: str, n: int, tarn: bool):
    """Writes n runs with a latest metric `m` into a server's database."""
    rng = random.Random(7)
    now = int(time.time() * 1000)
    rows = [(uuid.uuid4().hex, now - i, rng.random()) for i in range(n)]
    conn = sqlite3.connect(db, timeout=60)
    with conn:
        if tarn:
            conn.executemany(
                "INSERT INTO mlflow_runs (run_uuid, experiment_id, name, user_id, status, start_time, artifact_uri)"
                " VALUES (?, ?, 'r', 'bench', 'FINISHED', ?, 'mlflow-artifacts:/x')",
                [(r, int(experiment_id), t) for r, t, _ in rows],
            )
            conn.executemany(
                "INSERT INTO mlflow_latest_metrics (run_uuid, key, value, timestamp, step) VALUES (?, 'm', ?, ?, 0)",
                [(r, v, t) for r, t, v in rows],
            )
        else:
            conn.executemany(
                "INSERT INTO runs (run_uuid, name, source_type, user_id, status, start_time, lifecycle_stage,"
                " artifact_uri, experiment_id) VALUES (?, 'r', 'LOCAL', 'bench', 'FINISHED', ?, 'active', 'x', ?)",
                [(r, t, int(experiment_id)) for r, t, _ in rows],
            )
            conn.executemany(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES ('m', ?, ?, 0, 0, ?)",
                [(v, t, r) for r, t, v in rows],
            )
            conn.executemany(
                "INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES ('m', ?, ?, 0, 0, ?)",
                [(v, t, r) for r, t, v in rows],
            )
    conn.close()


def search_ms(url, experiment_id, rounds):
    api = Api(url)
    body = {"experiment_ids": [experiment_id], "filter": "metrics.m > 0.999", "max_results": 100}
    samples, found = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        found = len(api.post("runs/search", body).get("runs", []))
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tarn-bin")
    parser.add_argument("--sequential", type=int, default=1000)
    parser.add_argument("--threaded", type=int, default=4000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--search-rounds", type=int, default=20)
    args = parser.parse_args()
    binary = tarn_binary(args.tarn_bin)
    print(f"tarn binary: {binary}")
    work = Path(tempfile.mkdtemp(prefix="tarn-bench-mlflow-"))
    (work / "py").mkdir()
    (work / "tarn").mkdir()
    py_proc, py_url, py_db = start_python_server(work / "py")
    tarn_proc, tarn_url = start_tarn(binary, work / "tarn", CACHE / "envs")
    os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    try:
        results = {"python": measure(py_url, args), "tarn": measure(tarn_url, args)}
        fill_runs(py_db, results["python"]["experiment_id"], args.runs, tarn=False)
        fill_runs(work / "tarn" / "metadata.db", results["tarn"]["experiment_id"], args.runs, tarn=True)
        for name, url in [("python", py_url), ("tarn", tarn_url)]:
            ms, found = search_ms(url, results[name]["experiment_id"], args.search_rounds)
            results[name][f"runs/search over {args.runs} runs, p50 (ms)"] = ms
            results[name]["search hits"] = found
        print()
        for key in results["tarn"]:
            if key in ("experiment_id", "search hits"):
                continue
            py, tn = results["python"][key], results["tarn"][key]
            faster = py / tn if "(ms)" in key else tn / py
            print(f"{key:<44} python {py:10.1f}   tarn {tn:10.1f}   tarn is {faster:6.1f}x")
        print(f"search hits: python {results['python']['search hits']}, tarn {results['tarn']['search hits']}")
        goal = results["tarn"]["log-metric 8 clients (req/s)"] / results["python"]["log-metric 8 clients (req/s)"]
        search = results["tarn"][f"runs/search over {args.runs} runs, p50 (ms)"]
        print(f"goal: 8-client log-metric >= 30x python: {'met' if goal >= 30 else 'NOT met'} ({goal:.1f}x); "
              f"search < 100 ms: {'met' if search < 100 else 'NOT met'} ({search:.1f} ms)")
    finally:
        for proc in (py_proc, tarn_proc):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
