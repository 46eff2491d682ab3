"""Data drift: a tarn quality monitor refresh against Evidently's data drift
report, on the same data in the same run.

Data: a reference table of 1,000,000 rows and a current table of 200,000,
each with 50 numeric columns (normal) and 10 categorical columns (five
values), written by tarn's SQL warehouse with CTAS. In the current table
five numeric columns are shifted by half a standard deviation and two
categorical columns are skewed.

- tarn: a snapshot monitor on the current table with the reference as its
  baseline; the time is the refresh's own (`end_time_ms - start_time_ms`),
  and the memory the tarn process's peak RSS during it, over its RSS before.
  Timed twice: the first refresh (reference and current both read), then
  a second one after the current table is written again (CREATE OR
  REPLACE, as a new day's batch would be): the current table is read
  whole, the reference's profile is the one kept from the first refresh.
- Evidently: `Report([DataDriftPreset()]).run(current, reference)` in a
  child process, both tables read from the same Parquet files; the time is
  `run` alone, the memory the child's peak RSS.
Goals: at least 100x faster than Evidently; peak memory under 1 GiB.
Prints which columns each found drifted.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from tarn_server import start_tarn, tarn_binary

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"
NUMERIC, CATEGORICAL = 50, 10
SHIFTED_NUMERIC, SKEWED_CATEGORICAL = 5, 2


def columns_sql(shift: bool) -> str:
    cols = []
    for i in range(NUMERIC):
        delta = " + 0.5" if shift and i < SHIFTED_NUMERIC else ""
        cols.append(f"randn({i + 1}){delta} AS n{i}")
    for i in range(CATEGORICAL):
        seed = 1000 + i
        if shift and i < SKEWED_CATEGORICAL:
            pick = f"CASE WHEN rand({seed}) < 0.6 THEN 1 ELSE CAST(floor(rand({seed + 500}) * 5) AS INT) + 1 END"
        else:
            pick = f"CAST(floor(rand({seed}) * 5) AS INT) + 1"
        cols.append(f"element_at(array('a', 'b', 'c', 'd', 'e'), {pick}) AS c{i}")
    return ", ".join(cols)


class Api:
    def __init__(self, url, token):
        self.url, self.headers = url, {"Authorization": f"Bearer {token}"}

    def call(self, method, path, **kw):
        r = requests.request(method, self.url + path, headers=self.headers, timeout=600, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json()

    def sql(self, statement):
        warehouse = self.call("GET", "/api/2.0/sql/warehouses")["warehouses"][0]["id"]
        body = {"statement": statement, "warehouse_id": warehouse, "wait_timeout": "50s", "on_wait_timeout": "CONTINUE"}
        r = self.call("POST", "/api/2.0/sql/statements", json=body)
        while r["status"]["state"] in ("PENDING", "RUNNING"):
            time.sleep(0.5)
            r = self.call("GET", f"/api/2.0/sql/statements/{r['statement_id']}")
        if r["status"]["state"] != "SUCCEEDED":
            raise RuntimeError(f"{statement[:80]}: {r['status']}")
        return r


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


TABLE = "main.default.drift_current"


def timed_refresh(api, pid, start):
    """Runs `start` (which queues a refresh), waits for that refresh; its
    seconds, message and the process's peak RSS over its RSS before."""
    before = rss_mib(pid)
    peak = [before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    known = start()
    while True:
        refreshes = api.call("GET", f"/api/2.1/unity-catalog/tables/{TABLE}/monitor/refreshes")["refreshes"]
        if refreshes and refreshes[0]["refresh_id"] > known and refreshes[0]["state"] not in ("PENDING", "RUNNING"):
            break
        time.sleep(0.05)
    stop.set()
    sampler.join()
    refresh = refreshes[0]
    if refresh["state"] != "SUCCESS":
        raise RuntimeError(f"the refresh failed: {refresh.get('message')}")
    seconds = (refresh["end_time_ms"] - refresh["start_time_ms"]) / 1000
    return {"seconds": seconds, "peak_mib": peak[0] - before, "rss_before_mib": before,
            "message": refresh.get("message")}


def run_tarn_monitor(api, pid):
    def create():
        api.call("POST", f"/api/2.1/unity-catalog/tables/{TABLE}/monitor", json={
            "output_schema_name": "main.default", "assets_dir": "/Workspace/bench",
            "snapshot": {}, "baseline_table_name": "main.default.drift_reference"})
        return 0

    result = timed_refresh(api, pid, create)
    # Evidently's default rule for samples over 1,000 rows: Wasserstein
    # distance over the reference's standard deviation, or Jensen-Shannon
    # distance, at least 0.1.
    drift = api.sql(
        "SELECT d.column_name, d.wasserstein_distance / p.stddev, d.js_distance "
        "FROM main.default.drift_current_drift_metrics d JOIN main.default.drift_current_profile_metrics p "
        "ON p.column_name = d.column_name AND p.log_type = 'BASELINE' WHERE d.drift_type = 'BASELINE'")
    result["drifted"] = sorted(
        r[0] for r in drift["result"]["data_array"]
        if any(v is not None and float(v) >= 0.1 for v in r[1:])
    )
    return result


def second_tarn_refresh(api, pid, current_rows):
    """The current table written again, then a refresh: the reference's kept profile is reused."""
    api.sql(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT {columns_sql(True)} FROM range({current_rows})")

    def run():
        refreshes = api.call("GET", f"/api/2.1/unity-catalog/tables/{TABLE}/monitor/refreshes")["refreshes"]
        api.call("POST", f"/api/2.1/unity-catalog/tables/{TABLE}/monitor/refreshes", json={})
        return refreshes[0]["refresh_id"]

    return timed_refresh(api, pid, run)


EVIDENTLY = """
import json, resource, sys, time
import pyarrow.dataset as ds
from evidently import Report
from evidently.presets import DataDriftPreset
reference = ds.dataset(sys.argv[1], format="parquet").to_table().to_pandas()
current = ds.dataset(sys.argv[2], format="parquet").to_table().to_pandas()
began = time.perf_counter()
result = Report([DataDriftPreset()]).run(current, reference)
seconds = time.perf_counter() - began
drifted = []
for metric in result.dict()["metrics"]:
    name = metric.get("metric_name", "")
    if name.startswith("ValueDrift(") and metric["value"] is not None:
        column = name.split("column=")[1].split(",")[0].rstrip(")")
        threshold = float(name.split("threshold=")[1].rstrip(")")) if "threshold=" in name else 0.05
        method = name.split("method=")[1].split(",")[0] if "method=" in name else ""
        value = float(metric["value"])
        is_drift = value < threshold if "p_value" in method or "test" in method else value >= threshold
        if is_drift:
            drifted.append(column)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak, "drifted": sorted(drifted)}))
"""


def data_dir(api, table):
    location = api.call("GET", f"/api/2.1/unity-catalog/tables/{table}")["storage_location"]
    return location.removeprefix("file://")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tarn-bin")
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--current-rows", type=int, default=200_000)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tarn-bench-monitoring-"))
    home = work / "tarn-home"
    tarn, url = start_tarn(tarn_binary(args.tarn_bin), home, CACHE / "envs")
    try:
        api = Api(url, (home / "token").read_text().strip())
        began = time.perf_counter()
        api.sql(f"CREATE TABLE main.default.drift_reference AS SELECT {columns_sql(False)} FROM range({args.reference_rows})")
        api.sql(f"CREATE TABLE main.default.drift_current AS SELECT {columns_sql(True)} FROM range({args.current_rows})")
        print(f"tables written in {time.perf_counter() - began:.1f} s "
              f"({args.reference_rows:,} and {args.current_rows:,} rows, {NUMERIC} numeric and {CATEGORICAL} categorical columns)")
        reference_dir, current_dir = data_dir(api, "main.default.drift_reference"), data_dir(api, "main.default.drift_current")
        results = {"tarn": run_tarn_monitor(api, tarn.pid)}
        results["tarn_second"] = second_tarn_refresh(api, tarn.pid, args.current_rows)
    finally:
        tarn.terminate()
        tarn.wait()
    t, t2 = results["tarn"], results["tarn_second"]
    print(f"tarn first refresh: {t['seconds']:.2f} s, peak memory +{t['peak_mib']:.0f} MiB; drifted: {t['drifted']}")
    print(f"  ({t['message']})")
    print(f"tarn second refresh: {t2['seconds']:.2f} s, peak memory +{t2['peak_mib']:.0f} MiB")
    print(f"  ({t2['message']})")
    # The tables' Parquet files (one CTAS commit each, so every file is live).
    out = subprocess.run([sys.executable, "-c", EVIDENTLY, reference_dir, current_dir],
                         capture_output=True, text=True, check=True)
    e = json.loads(out.stdout.strip().splitlines()[-1])
    results["evidently"] = e
    print(f"Evidently DataDriftPreset: {e['seconds']:.2f} s, peak memory {e['peak_mib']:.0f} MiB; drifted: {e['drifted']}")
    ratio, ratio2 = e["seconds"] / t["seconds"], e["seconds"] / t2["seconds"]
    results["ratio"], results["ratio_second"] = ratio, ratio2
    print(f"tarn {ratio:.1f}x faster than Evidently on the first refresh, {ratio2:.1f}x on the second "
          f"(goal >= 100x); tarn's peak {max(t['peak_mib'], t2['peak_mib']):.0f} MiB (goal < 1024)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
