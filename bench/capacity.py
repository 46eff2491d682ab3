"""What tarn sustains: requests per second per API family, job runs per
second and MLflow metrics per second, each under `--connections` concurrent
HTTP/1.1 clients driven by wrk for `--seconds`, against a tarn started here
with its own home (SQLite metadata, local disk; `--database-url` for
PostgreSQL). With `--replicas N`, N `tarn serve` replicas share the home
and the metadata (TARN_REPLICA=true): each request is driven at every
replica at once (`--connections` each) and the rates are summed; reads are
served by each replica, other calls are forwarded to the lease holder.

Every request carries a real token and is answered in full (any non-2xx
answer is counted and printed). Job runs are `runs/submit`s of a one-task
run whose task is a condition (no compute), so the figure is the run state
machine's, from submit to TERMINATED, not an engine's. Statements are
`SELECT 1` on the SQL warehouse (Sail), through the Statement Execution API.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from tarn_server import start_tarn, tarn_binary

WRK_SCRIPT = """
wrk.method = "{method}"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def lua_string(text: str) -> str:
    return "nil" if text is None else json.dumps(text)


class Api:
    def __init__(self, url, token):
        self.url, self.token = url, token

    def call(self, method, path, body=None):
        r = requests.request(method, self.url + path, json=body, timeout=60,
                             headers={"Authorization": f"Bearer {self.token}"})
        r.raise_for_status()
        return r.json() if r.content else {}


def wrk(urls, token, method, path, body, connections, seconds, work: Path):
    """wrk at every URL at once; the rates summed, the slowest latencies."""
    script = work / "request.lua"
    script.write_text(WRK_SCRIPT.format(method=method, token=token,
                                        body=lua_string(json.dumps(body) if body is not None else None)))
    threads = min(2, connections)
    procs = [subprocess.Popen(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
                               "-s", str(script), url + path], stdout=subprocess.PIPE, text=True) for url in urls]
    each = [parse_wrk(p.communicate()[0]) for p in procs]
    total = {key: sum(r[key] for r in each) for key in ("rps", "requests", "non_2xx")}
    total["socket_errors"] = "; ".join(r["socket_errors"] for r in each if r["socket_errors"])
    for p in ("p50_ms", "p99_ms"):
        total[p] = max((r[p] or 0 for r in each), default=None)
    return total


def parse_wrk(out: str):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return None
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    return {"rps": rps, "requests": total, "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else "", "p50_ms": pct(50), "p99_ms": pct(99)}


def setup(api: Api):
    """Objects the requests read: a terminated cluster, 100 jobs, an MLflow run, a warehouse."""
    cluster = api.call("POST", "/api/2.1/clusters/create",
                       {"cluster_name": "bench", "spark_version": "16.4.x-scala2.12", "num_workers": 0})["cluster_id"]
    api.call("POST", "/api/2.1/clusters/delete", {"cluster_id": cluster})
    job_ids = [api.call("POST", "/api/2.2/jobs/create", {
        "name": f"bench-{i}",
        "tasks": [{"task_key": "t", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}}],
    })["job_id"] for i in range(100)]
    experiment = api.call("POST", "/api/2.0/mlflow/experiments/create", {"name": "capacity"})["experiment_id"]
    run = api.call("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment})["run"]["info"]["run_id"]
    warehouse = api.call("GET", "/api/2.0/sql/warehouses")["warehouses"][0]["id"]
    return {"cluster": cluster, "job": job_ids[0], "run": run, "warehouse": warehouse}


def cases(ids):
    now = int(time.time() * 1000)
    batch = [{"key": f"m{i}", "value": float(i), "timestamp": now, "step": 0} for i in range(100)]
    condition_run = {"run_name": "capacity",
                     "tasks": [{"task_key": "t", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}}]}
    return [
        # (family, request, method, path, body, units per request, unit)
        ("identity", "SCIM Me", "GET", "/api/2.0/preview/scim/v2/Me", None, 1, "req"),
        ("clusters", "clusters/get", "GET", f"/api/2.1/clusters/get?cluster_id={ids['cluster']}", None, 1, "req"),
        ("clusters", "clusters/list", "GET", "/api/2.1/clusters/list", None, 1, "req"),
        ("jobs", "jobs/get", "GET", f"/api/2.2/jobs/get?job_id={ids['job']}", None, 1, "req"),
        ("jobs", "jobs/list (25 of 100)", "GET", "/api/2.2/jobs/list?limit=25", None, 1, "req"),
        ("catalog", "schemas/get", "GET", "/api/2.1/unity-catalog/schemas/main.default", None, 1, "req"),
        ("catalog", "schemas/list", "GET", "/api/2.1/unity-catalog/schemas?catalog_name=main", None, 1, "req"),
        ("workspace", "workspace/get-status", "GET", "/api/2.0/workspace/get-status?path=/Users", None, 1, "req"),
        ("mlflow", "runs/get", "GET", f"/api/2.0/mlflow/runs/get?run_id={ids['run']}", None, 1, "req"),
        ("mlflow", "log-metric", "POST", "/api/2.0/mlflow/runs/log-metric",
         {"run_id": ids["run"], "key": "loss", "value": 0.5, "timestamp": now, "step": 1}, 1, "metric"),
        ("mlflow", "log-batch of 100", "POST", "/api/2.0/mlflow/runs/log-batch",
         {"run_id": ids["run"], "metrics": batch}, 100, "metric"),
        ("job runs", "runs/submit (condition task)", "POST", "/api/2.2/jobs/runs/submit", condition_run, 1, "run"),
        ("sql", "statements SELECT 1 (warehouse)", "POST", "/api/2.0/sql/statements",
         {"warehouse_id": ids["warehouse"], "statement": "SELECT 1", "wait_timeout": "30s"}, 1, "statement"),
    ]


def runs_finished(api: Api, started: float, timeout: float = 600):
    """Waits until no submitted run is active; the seconds since `started`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not api.call("GET", "/api/2.2/jobs/runs/list?active_only=true&limit=1").get("runs"):
            return time.time() - started
        time.sleep(0.2)
    raise RuntimeError("submitted runs still active")


def memory_mb(pid: int, field: str = "VmHWM") -> float:
    """A process's peak (VmHWM) or current (VmRSS) resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def engines_mb(pid: int) -> float:
    """What tarn's engine processes (its children) hold now."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                total += memory_mb(int(stat.parent.name), "VmRSS")
        except (OSError, ValueError, IndexError):
            continue
    return total


def new_database(server_url: str) -> str:
    """A new database on the PostgreSQL server at `server_url`; its URL."""
    name = "tarn_capacity_" + os.urandom(6).hex()
    subprocess.run(["psql", server_url, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tarn-bin")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--only", help="comma-separated families")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--database-url", help="a PostgreSQL server's URL: the metadata goes to a new database there")
    parser.add_argument("--replicas", type=int, default=1, help="tarn serve replicas sharing the workspace")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    binary = tarn_binary(args.tarn_bin)
    work = Path(tempfile.mkdtemp(prefix="tarn-capacity-"))
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"
    if args.database_url:
        (work / "home").mkdir(parents=True)
        (work / "home" / "tarn.toml").write_text(f'database_url = "{new_database(args.database_url)}"\n')
    env_dir = Path(os.environ.get("TARN_ENV_DIR", cache / "envs"))
    replica = {"TARN_REPLICA": "true"} if args.replicas > 1 else {}
    servers = [start_tarn(binary, work / "home", env_dir, replica) for _ in range(args.replicas)]
    proc, url = servers[0]
    urls = [u for _, u in servers]
    results = []
    try:
        time.sleep(1)
        token = (work / "home" / "token").read_text().strip()
        api = Api(url, token)
        ids = setup(api)
        # The warehouse's engine starts on the first statement, not inside the measurement.
        api.call("POST", "/api/2.0/sql/statements",
                 {"warehouse_id": ids["warehouse"], "statement": "SELECT 1", "wait_timeout": "50s"})
        only = set(args.only.split(",")) if args.only else None
        store = "PostgreSQL" if args.database_url else "SQLite"
        replicas = f"{args.replicas} replicas, " if args.replicas > 1 else ""
        per = " per replica" if replicas else ""
        print(f"tarn {binary} ({replicas}metadata in {store}), {args.connections} connections{per}, "
              f"{args.seconds} s each, {os.cpu_count()} cores shared with wrk")
        print(f"{'family':<10} {'request':<34} {'req/s':>9} {'per second':>18} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for family, name, method, path, body, units, unit in cases(ids):
            if only and family not in only:
                continue
            started, engines_before = time.time(), engines_mb(proc.pid)
            r = wrk(urls, token, method, path, body, args.connections, args.seconds, work)
            if family == "sql":
                # Sessions the engine kept after their statement would show here.
                r["engines_mb_before"], r["engines_mb_after"] = engines_before, engines_mb(proc.pid)
            r.update(family=family, request=name, unit=unit, units_per_s=r["rps"] * units)
            if unit == "run":
                # Accepted is not done: the rate is submitted runs over the time until the last one ended.
                r["runs_completed_per_s"] = r["requests"] / runs_finished(api, started)
                r["units_per_s"] = r["runs_completed_per_s"]
            errors = r["non_2xx"] + (1 if r["socket_errors"] else 0)
            per_second = f"{r['units_per_s']:.0f} {unit}s"
            print(f"{family:<10} {name:<34} {r['rps']:>9.0f} {per_second:>18} "
                  f"{r['p50_ms'] or 0:>8.1f} {r['p99_ms'] or 0:>8.1f} {errors:>7}")
            results.append(r)
        rss = max(memory_mb(p.pid) for p, _ in servers)
        print(f"tarn's peak resident memory: {rss:.0f} MiB" + (" (the largest replica)" if len(servers) > 1 else ""))
        for r in results:
            if "engines_mb_after" in r:
                print(f"engine processes' resident memory around the statements: "
                      f"{r['engines_mb_before']:.0f} MiB before, {r['engines_mb_after']:.0f} MiB after")
    finally:
        for p, _ in reversed(servers):
            p.terminate()
            p.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "peak_rss_mb": rss}, indent=2))


if __name__ == "__main__":
    main()
