"""Model serving: tarn's endpoints against `mlflow models serve`.

The same sklearn model (a random forest, 100 trees, 20 features) is served
by both on this machine in the same run, each with as many worker
processes as there are cores (tarn: workload_size Medium; MLflow:
MLFLOW_MODELS_WORKERS), and each gets the same load over HTTP with JSON
`dataframe_split` bodies of one row:
- 1 client, sequential, on one keep-alive connection of the standard
  library's http.client: latency p50/p99, and tarn's added latency over the
  model's own `predict` (the pyfunc model in this process, same row);
- 32 concurrent clients (4 processes x 8 threads of `requests` sessions):
  requests per second;
- both again on a tarn endpoint with an inference table.
Goals: tarn's added latency at 1 client under 1 ms p50; at 32 clients at
least 3x `mlflow models serve`'s throughput; inference logging adds under 5%
to either. Prints each figure and ratio.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import requests
from tarn_server import start_tarn, tarn_binary

# bench/mlflow.py would shadow the mlflow package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"
FEATURES = [f"f{i}" for i in range(20)]


def train(work: Path):
    import mlflow
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(5000, len(FEATURES))), columns=FEATURES)
    y = X.f0 * 3 + X.f1 ** 2 + rng.normal(size=len(X))
    model = RandomForestRegressor(n_estimators=100, max_depth=10, n_jobs=1, random_state=0).fit(X, y)
    path = work / "model"
    mlflow.sklearn.save_model(model, str(path), input_example=X.head(2), serialization_format="cloudpickle")
    return path, X


def body_for(X, i):
    row = X.iloc[i % len(X)]
    return json.dumps({"dataframe_split": {"columns": FEATURES, "data": [row.tolist()]}})


def tarn_scorer(model):
    """tarn's serving worker's scorer (python/tarn/serving.py) around `model`."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "python" / "tarn" / "serving.py"
    spec = importlib.util.spec_from_file_location("tarn_serving_worker", script)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    return worker.Scorer(model, batching=False), worker.Request


def in_process_p50s(path: Path, X, bodies, n=500):
    """In this process, on the same rows: the model's own predict of one
    row; MLflow's scoring code (parse the JSON body, then predict); and the
    scoring tarn's worker does (its parse of a plain numeric table, predict,
    the answer's JSON)."""
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    loaded = mlflow.pyfunc.load_model(str(path))
    schema = loaded.metadata.get_input_schema()
    scorer, request = tarn_scorer(loaded)
    times = {"predict": [], "mlflow": [], "tarn": []}
    for i in range(n):
        frame, body = X.iloc[[i % len(X)]], bodies[i % len(bodies)]
        began = time.perf_counter()
        loaded.predict(frame)
        times["predict"].append(time.perf_counter() - began)
        began = time.perf_counter()
        scoring_server.invocations(body, "application/json", loaded, schema)
        times["mlflow"].append(time.perf_counter() - began)
        began = time.perf_counter()
        scorer.single(request({"id": i, "content_type": "application/json"}, body.encode()))
        times["tarn"].append(time.perf_counter() - began)
    return {key: statistics.median(t) * 1000 for key, t in times.items()}


class Connection:
    """One keep-alive HTTP/1.1 connection from the standard library, for the
    1-client latencies: `requests` spends about 0.4 ms of its own on each
    call (see `client_floor_p50`), which would count as the server's."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.path = parts.path
        self.connection = http.client.HTTPConnection(parts.netloc, timeout=60)

    def post(self, body, headers):
        self.connection.request("POST", self.path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()


def client_floor_p50(url, headers, body, n=1000):
    """A round trip of this client with the same request to an endpoint that
    does not exist (the upload, tarn's auth and routing, a 404 back), over
    the standard library's connection and over a `requests` session."""
    connection, session = Connection(url), requests.Session()
    calls = {"http_client": lambda: connection.post(body, headers),
             "requests": lambda: session.post(url, data=body, headers=headers, timeout=60)}
    p50s = {}
    for name, call in calls.items():
        times = []
        for _ in range(n):
            began = time.perf_counter()
            call()
            times.append(time.perf_counter() - began)
        p50s[name] = statistics.median(times) * 1000
    return p50s


def sequential(url, headers, bodies, n):
    connection = Connection(url)
    times = []
    for i in range(n):
        began = time.perf_counter()
        status, body = connection.post(bodies[i % len(bodies)], headers)
        times.append(time.perf_counter() - began)
        assert status == 200, body
    times.sort()
    return {"p50_ms": times[len(times) // 2] * 1000, "p99_ms": times[int(len(times) * 0.99)] * 1000}


def _client_process(url, headers, bodies, threads, seconds, out):
    done = [0] * threads
    errors = [0] * threads
    stop = time.monotonic() + seconds

    def loop(k):
        session = requests.Session()
        i = k
        while time.monotonic() < stop:
            r = session.post(url, data=bodies[i % len(bodies)], headers=headers, timeout=60)
            if r.status_code == 200:
                done[k] += 1
            else:
                errors[k] += 1
            i += threads

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    out.put((sum(done), sum(errors)))


def concurrent(url, headers, bodies, clients=32, processes=4, seconds=15.0):
    out = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_client_process, args=(url, headers, bodies, clients // processes, seconds, out))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    done = sum(r[0] for r in results)
    return {"rps": done / seconds, "errors": sum(r[1] for r in results)}


def start_mlflow_serve(path: Path, workers: int):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The server execs `uvicorn` from PATH.
    path_var = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = dict(os.environ, MLFLOW_MODELS_WORKERS=str(workers), PATH=path_var)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(path), "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                return proc, f"{url}/invocations"
        except requests.RequestException:
            time.sleep(0.5)
    raise RuntimeError("mlflow models serve did not start")


def tarn_endpoint(api, token, model_name, name, table_prefix=None):
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "name": name,
        "config": {"served_entities": [{"entity_name": model_name, "entity_version": "1", "workload_size": "Medium"}]},
    }
    if table_prefix:
        body["ai_gateway"] = {"inference_table_config": {
            "catalog_name": "main", "schema_name": "default", "table_name_prefix": table_prefix, "enabled": True}}
    r = requests.post(f"{api}/api/2.0/serving-endpoints", json=body, headers=headers, timeout=60)
    r.raise_for_status()
    deadline = time.time() + 900
    while time.time() < deadline:
        state = requests.get(f"{api}/api/2.0/serving-endpoints/{name}", headers=headers, timeout=60).json()["state"]
        if state["config_update"] == "NOT_UPDATING" and state["ready"] == "READY":
            return f"{api}/serving-endpoints/{name}/invocations"
        if state["config_update"] == "UPDATE_FAILED":
            raise RuntimeError(f"endpoint {name} failed to deploy")
        time.sleep(1)
    raise RuntimeError(f"endpoint {name} did not become ready")


def register(api, token, path: Path, X, model_name):
    import mlflow
    import mlflow.sklearn

    os.environ["DATABRICKS_HOST"], os.environ["DATABRICKS_TOKEN"] = api, token
    mlflow.set_tracking_uri("databricks")
    mlflow.set_registry_uri("databricks")
    mlflow.set_experiment("/Users/admin/serving-bench")
    loaded = mlflow.sklearn.load_model(str(path))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(loaded, name="model", input_example=X.head(2), serialization_format="cloudpickle")
    mlflow.register_model(info.model_uri, model_name)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tarn-bin")
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per system")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each concurrent run")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="tarn-bench-serving-"))
    path, X = train(work)
    bodies = [body_for(X, i) for i in range(200)]
    json_headers = {"Content-Type": "application/json"}
    local = in_process_p50s(path, X, bodies)
    results = {"cores": cores, "own_predict_p50_ms": local["predict"], "scoring_code_p50_ms": local["mlflow"],
               "worker_scoring_p50_ms": local["tarn"]}
    print(f"in this process, 1 row: the model's predict p50 {local['predict']:.2f} ms, "
          f"MLflow's scoring code (parse + predict) p50 {local['mlflow']:.2f} ms, "
          f"tarn's worker scoring p50 {local['tarn']:.2f} ms")

    proc, invocations = start_mlflow_serve(path, cores)
    try:
        sequential(invocations, json_headers, bodies, 200)
        results["mlflow_1"] = sequential(invocations, json_headers, bodies, args.requests)
        results["mlflow_32"] = concurrent(invocations, json_headers, bodies, seconds=args.seconds)
    finally:
        proc.terminate()
        proc.wait()
    print(f"mlflow models serve: 1 client p50 {results['mlflow_1']['p50_ms']:.2f} ms, "
          f"32 clients {results['mlflow_32']['rps']:.0f} req/s")

    home = work / "tarn-home"
    tarn, api = start_tarn(tarn_binary(args.tarn_bin), home, CACHE / "envs")
    try:
        token = (home / "token").read_text().strip()
        register(api, token, path, X, "bench_forest")
        auth = dict(json_headers, Authorization=f"Bearer {token}")
        floor_url = f"{api}/serving-endpoints/no-such-endpoint/invocations"
        floors = client_floor_p50(floor_url, auth, bodies[0])
        results["client_floor_p50_ms"], results["requests_floor_p50_ms"] = floors["http_client"], floors["requests"]
        urls = {}
        for key, prefix in [("tarn", None), ("tarn_logged", "bench_log")]:
            urls[key] = tarn_endpoint(api, token, "bench_forest", key.replace("_", "-"), prefix)
            sequential(urls[key], auth, bodies, 200)
        # The two endpoints take turns, so drift on a busy machine hits both alike.
        rounds = 4
        runs = {key: {"1": [], "32": []} for key in urls}
        for _ in range(rounds):
            for key, url in urls.items():
                runs[key]["1"].append(sequential(url, auth, bodies, args.requests // rounds))
                runs[key]["32"].append(concurrent(url, auth, bodies, seconds=args.seconds / rounds))
        for key, got in runs.items():
            results[f"{key}_1"] = {
                "p50_ms": statistics.median(r["p50_ms"] for r in got["1"]),
                "p99_ms": statistics.median(r["p99_ms"] for r in got["1"]),
            }
            results[f"{key}_32"] = {
                "rps": statistics.median(r["rps"] for r in got["32"]),
                "errors": sum(r["errors"] for r in got["32"]),
            }
            print(f"{key}: 1 client p50 {results[f'{key}_1']['p50_ms']:.2f} ms, "
                  f"32 clients {results[f'{key}_32']['rps']:.0f} req/s ({results[f'{key}_32']['errors']} errors)"
                  f" (medians of {rounds} alternating rounds)")
    finally:
        tarn.terminate()
        tarn.wait()

    added = results["tarn_1"]["p50_ms"] - results["own_predict_p50_ms"]
    front = results["tarn_1"]["p50_ms"] - results["worker_scoring_p50_ms"] - results["client_floor_p50_ms"]
    ratio = results["tarn_32"]["rps"] / results["mlflow_32"]["rps"]
    logging_latency = results["tarn_logged_1"]["p50_ms"] / results["tarn_1"]["p50_ms"] - 1
    logging_rps = 1 - results["tarn_logged_32"]["rps"] / results["tarn_32"]["rps"]
    results.update(added_ms=added, front_ms=front, throughput_ratio=ratio, logging_latency=logging_latency, logging_rps=logging_rps)
    print(f"added latency over predict at 1 client: {added:.2f} ms p50 (goal < 1 ms); of it, "
          f"{results['worker_scoring_p50_ms'] - results['own_predict_p50_ms']:.2f} ms the worker's parse and answer "
          f"(MLflow's would be {results['scoring_code_p50_ms'] - results['own_predict_p50_ms']:.2f} ms), "
          f"{results['client_floor_p50_ms']:.2f} ms this client's round trip through tarn's auth and routing "
          f"({results['requests_floor_p50_ms']:.2f} ms with requests), "
          f"{front:.2f} ms the rest of tarn and the hop to the worker")
    print(f"32 clients: tarn {ratio:.2f}x mlflow models serve (goal >= 3x)")
    print(f"inference table: {logging_latency * 100:+.1f}% p50 at 1 client, "
          f"{-logging_rps * 100:+.1f}% req/s at 32 (goal: under 5% either way)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
