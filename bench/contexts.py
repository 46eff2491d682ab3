"""Execution contexts: tarn's Command Execution API against a Jupyter kernel.

Both are a long-lived Python interpreter that keeps state between commands;
the Jupyter kernel (ipykernel, driven with jupyter_client over ZeroMQ) is
the peer an IDE or notebook would use locally. Each gets `spark`, a Spark
Connect session on the same tarn cluster through tarn's gateway, so the
Spark figures compare the command paths, not the engine.

Measured, in one run:
- round trip of execute + status (polled every 1 ms) for `1+1` and for
  `spark.range(1000).count()` in a warm context, p50/p90;
- context creation (contexts/create until Running) with a warm worker ready,
  and a Jupyter kernel start until it answers;
- 8 contexts created at once on one cluster, each running a Spark count.
Goals: warm Python round trip under 10 ms p50, context creation under 300 ms.
"""

import argparse
import concurrent.futures
import os
import statistics
import tempfile
import time
from pathlib import Path

import requests
from tarn_server import start_tarn, tarn_binary

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"
SPARK = "spark.range(1000).count()"
# Work the engine cannot answer from metadata: a sum over 5M generated rows.
WORK = "spark.range(5000000).selectExpr('sum(id % 7) AS s').first()['s']"


class Tarn:
    def __init__(self, url, token):
        self.url = url
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def call(self, method, path, **kw):
        r = self.s.request(method, self.url + path, **kw)
        r.raise_for_status()
        return r.json()

    def cluster(self):
        body = {"cluster_name": "bench", "spark_version": "16.4.x-scala2.13", "node_type_id": "local-2c", "num_workers": 0}
        cid = self.call("POST", "/api/2.1/clusters/create", json=body)["cluster_id"]
        while self.call("GET", "/api/2.1/clusters/get", params={"cluster_id": cid})["state"] != "RUNNING":
            time.sleep(0.05)
        return cid

    def create(self, cluster_id):
        cid = self.call("POST", "/api/1.2/contexts/create", json={"clusterId": cluster_id, "language": "python"})["id"]
        while self.call("GET", "/api/1.2/contexts/status", params={"clusterId": cluster_id, "contextId": cid})["status"] != "Running":
            time.sleep(0.001)
        return cid

    def run(self, cluster_id, context_id, code):
        body = {"clusterId": cluster_id, "contextId": context_id, "language": "python", "command": code}
        command = self.call("POST", "/api/1.2/commands/execute", json=body)["id"]
        query = {"clusterId": cluster_id, "contextId": context_id, "commandId": command}
        while True:
            status = self.call("GET", "/api/1.2/commands/status", params=query)
            if status["status"] in ("Finished", "Error", "Cancelled"):
                assert status["results"]["resultType"] != "error", status
                return status["results"]
            time.sleep(0.001)


class Jupyter:
    """One ipykernel with `spark` set up like a tarn context."""

    def __init__(self, remote):
        from jupyter_client.manager import KernelManager

        started = time.perf_counter()
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.start_seconds = time.perf_counter() - started
        self.run(f"from pyspark.sql import SparkSession\nspark = SparkSession.builder.remote({remote!r}).getOrCreate()")

    def run(self, code):
        reply = self.kc.execute_interactive(code, store_history=False, output_hook=lambda msg: None, timeout=300)
        assert reply["content"]["status"] == "ok", reply["content"]

    def stop(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def timed(fn, n):
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"p50": statistics.median(samples), "p90": samples[int(len(samples) * 0.9) - 1], "n": n}


def line(name, tarn, peer, unit="ms", goal=None):
    ratio = peer / tarn if tarn else float("inf")
    goal_text = f"  goal < {goal} {unit}: {'met' if tarn < goal else 'NOT met'}" if goal else ""
    print(f"{name:<44} tarn {tarn:9.2f} {unit}   jupyter {peer:9.2f} {unit}   jupyter/tarn {ratio:5.2f}x{goal_text}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tarn-bin")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--spark-rounds", type=int, default=30)
    args = parser.parse_args()
    binary = tarn_binary(args.tarn_bin)
    print(f"tarn binary: {binary}")
    home = Path(tempfile.mkdtemp(prefix="tarn-bench-contexts-"))
    proc, url = start_tarn(binary, home, CACHE / "envs")
    try:
        api = Tarn(url, (home / "token").read_text().strip())
        cluster = api.cluster()
        remote = f"sc://localhost:{__import__('json').loads((home / 'server.json').read_text())['spark_connect_port']}/;x-databricks-cluster-id={cluster};token={(home / 'token').read_text().strip()}"

        time.sleep(8)  # let the pool warm its worker
        creations = []
        for _ in range(5):
            started = time.perf_counter()
            context = api.create(cluster)
            creations.append((time.perf_counter() - started) * 1000)
            api.call("POST", "/api/1.2/contexts/destroy", json={"clusterId": cluster, "contextId": context})
            time.sleep(8)  # the pool replaces the worker taken
        context = api.create(cluster)
        api.run(cluster, context, SPARK)  # first Spark call opens the session

        jupyter_starts = []
        kernel = None
        for _ in range(3):
            if kernel:
                kernel.stop()
            kernel = Jupyter(remote)
            jupyter_starts.append(kernel.start_seconds * 1000)
        kernel.run(SPARK)

        py_tarn = timed(lambda: api.run(cluster, context, "1+1"), args.rounds)
        py_peer = timed(lambda: kernel.run("1+1"), args.rounds)
        sp_tarn = timed(lambda: api.run(cluster, context, SPARK), args.spark_rounds)
        sp_peer = timed(lambda: kernel.run(SPARK), args.spark_rounds)
        kernel.stop()

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            contexts = list(pool.map(lambda _: api.create(cluster), range(8)))
        create8 = time.perf_counter() - started
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda c: api.run(cluster, c, WORK)["data"], contexts))
        run8 = time.perf_counter() - started
        assert len(set(answers)) == 1, answers
        started = time.perf_counter()
        api.run(cluster, contexts[0], WORK)
        run1 = time.perf_counter() - started

        print()
        line("execute+status `1+1`, p50", py_tarn["p50"], py_peer["p50"], goal=10)
        line("execute+status `1+1`, p90", py_tarn["p90"], py_peer["p90"])
        line(f"execute+status `{SPARK}`, p50", sp_tarn["p50"], sp_peer["p50"])
        line(f"execute+status `{SPARK}`, p90", sp_tarn["p90"], sp_peer["p90"])
        line("context creation (warm worker) vs kernel start, median", statistics.median(creations), statistics.median(jupyter_starts), goal=300)
        print(f"{'8 contexts created at once':<44} {create8:6.2f} s (one warm worker, seven started cold)")
        print(f"{'8 contexts each summing 5M rows at once':<44} {run8:6.2f} s   (one alone: {run1:.2f} s)")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
