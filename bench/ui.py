"""tarn's web pages with a big workspace: every list is paged on the
server, so each page should answer in under 100 ms with 100,000 job runs,
100,000 MLflow runs and 10,000 tables in one schema.

tarn is set up through its API (a job of three condition tasks run once, a
schema and a Delta table made by SQL, an experiment), then the store is
grown straight in its SQLite database, as bench/mlflow.py does, by copying
those real rows: creating 100,000 runs through the API takes longer than the
benchmark. Each page is then fetched `--rounds` times (p50, p95, max).

The peer: the Python `mlflow server` holding the same 100,000 MLflow runs,
timed on the call its own UI makes to fill the experiment's runs table
(`ajax-api/2.0/mlflow/runs/search`, 100 runs, newest first); tarn's page
renders its runs table, HTML included, from the same amount of data.
"""

import argparse
import importlib.util
import json
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import requests
from tarn_server import start_tarn, tarn_binary

# bench/mlflow.py's helpers (its file name hides the mlflow package's, so it
# is loaded by path).
_spec = importlib.util.spec_from_file_location("mlflow_bench", Path(__file__).with_name("mlflow.py"))
mlflow_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mlflow_bench)
fill_runs, start_python_server = mlflow_bench.fill_runs, mlflow_bench.start_python_server

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"
GOAL_MS = 100.0


class Api:
    def __init__(self, url, token):
        self.url, self.s = url, requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def call(self, method, path, body=None):
        r = self.s.request(method, self.url + path, json=body, timeout=300)
        r.raise_for_status()
        return r.json() if r.content else {}


def condition(key, after=None):
    task = {"task_key": key, "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}}
    if after:
        task["depends_on"] = [{"task_key": after}]
    return task


def set_up(api):
    """One real job run, one real table, one experiment."""
    job = api.call("POST", "/api/2.1/jobs/create", {
        "name": "bench-ui", "tasks": [condition("extract"), condition("transform", "extract"),
                                      condition("load", "transform")]})["job_id"]
    run = api.call("POST", "/api/2.1/jobs/run-now", {"job_id": job})["run_id"]
    deadline = time.time() + 120
    while api.call("GET", f"/api/2.1/jobs/runs/get?run_id={run}")["state"]["life_cycle_state"] != "TERMINATED":
        if time.time() > deadline:
            raise RuntimeError("the set-up run did not finish")
        time.sleep(0.2)
    warehouse = api.call("GET", "/api/2.0/sql/warehouses")["warehouses"][0]["id"]
    for sql in ("CREATE SCHEMA IF NOT EXISTS main.bench",
                "CREATE TABLE main.bench.t0 (id BIGINT, name STRING) COMMENT 'bench'",
                "INSERT INTO main.bench.t0 VALUES (1, 'a'), (2, 'b')"):
        out = api.call("POST", "/api/2.0/sql/statements",
                       {"warehouse_id": warehouse, "statement": sql, "wait_timeout": "50s"})
        if out["status"]["state"] != "SUCCEEDED":
            raise RuntimeError(f"{sql}: {out['status']}")
    experiment = api.call("POST", "/api/2.0/mlflow/experiments/create", {"name": "/bench-ui"})["experiment_id"]
    return job, run, experiment


def grow(db: Path, job_runs: int, tables: int):
    """Copies the job's run (parent and task rows) and the table's catalog row."""
    conn = sqlite3.connect(db, timeout=60)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(job_runs)") if r[1] != "run_id"]
    rows = conn.execute(f"SELECT run_id, {', '.join(cols)} FROM job_runs ORDER BY run_id").fetchall()
    parent = next(r for r in rows if r[cols.index("parent_run_id") + 1] is None)
    tasks = [r for r in rows if r[cols.index("parent_run_id") + 1] == parent[0]]
    next_id = conn.execute("SELECT max(run_id) FROM job_runs").fetchone()[0] + 1
    at = {c: i + 1 for i, c in enumerate(cols)}
    insert = f"INSERT INTO job_runs (run_id, {', '.join(cols)}) VALUES ({', '.join('?' * (len(cols) + 1))})"
    batch = []
    for i in range(job_runs):
        shift = (i + 1) * 60_000
        pid = next_id
        next_id += 1
        for row, rid, parent_id in [(parent, pid, None)] + [(t, None, pid) for t in tasks]:
            values = list(row)
            if rid is None:
                rid = next_id
                next_id += 1
            values[0] = rid
            values[at["parent_run_id"]] = parent_id
            values[at["idempotency_token"]] = None
            for c in ("start_time", "execution_start", "end_time"):
                if values[at[c]] is not None:
                    values[at[c]] -= shift
            batch.append(values)
    with conn:
        conn.executemany(insert, batch)
        table = conn.execute("SELECT full_name, parent, info FROM uc_objects WHERE kind = 'table' AND "
                             "full_name = 'main.bench.t0'").fetchone()
        copies = []
        for i in range(1, tables):
            info = json.loads(table[2])
            name = f"t{i:05d}"
            info.update(name=name, full_name=f"main.bench.{name}", table_id=str(uuid.uuid4()))
            copies.append(("table", f"main.bench.{name}", table[1], info["table_id"], json.dumps(info)))
        conn.executemany("INSERT INTO uc_objects (kind, full_name, parent, id, info) VALUES (?, ?, ?, ?, ?)", copies)
    conn.close()


def timed(session, url, rounds):
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        r = session.get(url, timeout=60)
        samples.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{url}: {r.status_code} {r.text[:300]}")
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], samples[-1], len(r.content)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tarn-bin")
    parser.add_argument("--job-runs", type=int, default=100_000)
    parser.add_argument("--mlflow-runs", type=int, default=100_000)
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    binary = tarn_binary(args.tarn_bin)
    print(f"tarn binary: {binary}")
    work = Path(tempfile.mkdtemp(prefix="tarn-bench-ui-"))
    (work / "py").mkdir()
    (work / "tarn").mkdir()
    tarn_proc, tarn_url = start_tarn(binary, work / "tarn", CACHE / "envs")
    py_proc = None
    try:
        token = (work / "tarn" / "token").read_text().strip()
        api = Api(tarn_url, token)
        job, run, experiment = set_up(api)
        started = time.time()
        grow(work / "tarn" / "metadata.db", args.job_runs, args.tables)
        fill_runs(work / "tarn" / "metadata.db", experiment, args.mlflow_runs, tarn=True)
        print(f"grew the store in {time.time() - started:.0f} s: {args.job_runs} job runs, "
              f"{args.mlflow_runs} MLflow runs, {args.tables} tables")
        pages = [
            ("home", "/"),
            ("compute", "/compute"),
            ("jobs", "/jobs"),
            ("job (grid, runs)", f"/jobs/{job}"),
            ("job, runs page 1000", f"/jobs/{job}?offset=50000"),
            ("run (DAG, Gantt)", f"/jobs/{job}/runs/{run}"),
            ("experiment runs", f"/ml/experiments/{experiment}"),
            ("experiment, filtered", f"/ml/experiments/{experiment}?filter=metrics.m%20%3E%200.999"),
            ("experiment, sorted by metric", f"/ml/experiments/{experiment}?order_by=metrics.m%20DESC"),
            ("schema tables", "/explore/data/main/bench"),
            ("schema tables, last page", f"/explore/data/main/bench?offset={args.tables - 50}"),
            ("table", "/explore/data/main/bench/t0"),
            ("costs", "/costs"),
            ("pipelines", "/pipelines"),
            ("models", "/ml/models"),
        ]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        print(f"\n{'page':<32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'KiB':>7}  goal < {GOAL_MS:.0f} ms")
        results = {}
        for name, path in pages:
            p50, p95, top, size = timed(session, tarn_url + path, args.rounds)
            results[name] = p50
            print(f"{name:<32} {p50:8.1f} {p95:8.1f} {top:8.1f} {size / 1024:7.1f}  {'met' if p50 < GOAL_MS else 'NOT met'}")
        py_proc, py_url, py_db = start_python_server(work / "py")
        py_exp = requests.post(f"{py_url}/api/2.0/mlflow/experiments/create", json={"name": "bench-ui"},
                               timeout=30).json()["experiment_id"]
        fill_runs(py_db, py_exp, args.mlflow_runs, tarn=False)
        body = {"experiment_ids": [py_exp], "filter": "", "run_view_type": "ACTIVE_ONLY", "max_results": 100,
                "order_by": ["attributes.start_time DESC"]}
        samples = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            requests.post(f"{py_url}/ajax-api/2.0/mlflow/runs/search", json=body, timeout=120).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
        peer = statistics.median(samples)
        ours = results["experiment runs"]
        print(f"\nMLflow server, its UI's runs-table call over {args.mlflow_runs} runs: p50 {peer:.1f} ms; "
              f"tarn's experiment page (HTML): p50 {ours:.1f} ms; tarn is {peer / ours:.1f}x")
        slow = [n for n, ms in results.items() if ms >= GOAL_MS]
        print(f"goal: every page < {GOAL_MS:.0f} ms p50: {'met' if not slow else 'NOT met: ' + ', '.join(slow)}")
    finally:
        for proc in (tarn_proc, py_proc):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
