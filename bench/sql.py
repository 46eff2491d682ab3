"""The warehouse through SQL drivers: `SELECT 1` round trips and a
1,000,000-row fetch of one Delta table, through databricks-sql-connector's
default (Thrift) backend, through the SQL Statement Execution API (INLINE
JSON_ARRAY chunks, the other way to read a warehouse), and through DuckDB's
own Python client reading the table's Parquet files (the peer: an
in-process engine, no network). Goals: `SELECT 1` under 20 ms p50 through
the connector; the 1M-row fetch through the connector at least as fast as
through the Statement Execution API.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import requests
from databricks import sql
from tarn_server import start_tarn, tarn_binary

ROWS = 1_000_000


def timed(fn, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


class Api:
    def __init__(self, url, token):
        self.url, self.s = url, requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def call(self, method, path, body=None):
        r = self.s.request(method, self.url + path, json=body, timeout=600)
        r.raise_for_status()
        return r.json()

    def statement(self, warehouse, text):
        """Runs `text`; all its rows (every chunk), as JSON arrays."""
        answer = self.call("POST", "/api/2.0/sql/statements",
                           {"warehouse_id": warehouse, "statement": text, "wait_timeout": "50s"})
        while answer["status"]["state"] in ("PENDING", "RUNNING"):
            time.sleep(0.05)
            answer = self.call("GET", f"/api/2.0/sql/statements/{answer['statement_id']}")
        assert answer["status"]["state"] == "SUCCEEDED", answer["status"]
        rows = list(answer.get("result", {}).get("data_array", []))
        link = answer.get("result", {}).get("next_chunk_internal_link")
        while link:
            chunk = self.call("GET", link)
            rows.extend(chunk.get("data_array", []))
            link = chunk.get("next_chunk_internal_link")
        return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--fetch-rounds", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tarn-bench-sql-"))
    env_dir = Path.home() / ".cache" / "tarn" / "envs"
    binary = tarn_binary(args.binary)
    proc, url = start_tarn(binary, home, env_dir)
    try:
        run(args, url, (home / "token").read_text().strip())
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def run(args, url, token):
    api = Api(url, token)
    warehouse = api.call("GET", "/api/2.0/sql/warehouses")["warehouses"][0]["id"]
    api.statement(warehouse, "CREATE SCHEMA IF NOT EXISTS main.bench")
    api.statement(warehouse, f"CREATE TABLE main.bench.million AS SELECT id, id * 2 AS twice FROM range({ROWS})")
    location = api.call("GET", "/api/2.1/unity-catalog/tables/main.bench.million")["storage_location"]
    files = location.removeprefix("file://").rstrip("/") + "/*.parquet"
    path = f"/sql/1.0/warehouses/{warehouse}"
    conn = sql.connect(server_hostname="127.0.0.1", http_path=path, access_token=token,
                       _connection_uri=url + path)
    cur = conn.cursor()
    duck = duckdb.connect()

    def connector_select1():
        cur.execute("SELECT 1")
        assert cur.fetchall()[0][0] == 1

    def api_select1():
        assert api.statement(warehouse, "SELECT 1") == [["1"]]

    def duck_select1():
        assert duck.execute("SELECT 1").fetchall() == [(1,)]

    def connector_fetch():
        cur.execute("SELECT id, twice FROM main.bench.million")
        assert cur.fetchall_arrow().num_rows == ROWS

    def api_fetch():
        assert len(api.statement(warehouse, "SELECT id, twice FROM main.bench.million")) == ROWS

    def duck_fetch():
        assert duck.sql(f"SELECT id, twice FROM read_parquet('{files}')").to_arrow_table().num_rows == ROWS

    print(f"tarn: {tarn_binary(args.binary)}")
    print(f"{'what':42} {'p50 ms':>9} {'p95 ms':>9}")
    results = {}
    for name, fn, rounds in [
        ("SELECT 1, connector (Thrift)", connector_select1, args.rounds),
        ("SELECT 1, Statement Execution API", api_select1, args.rounds),
        ("SELECT 1, DuckDB in process", duck_select1, args.rounds),
        (f"{ROWS:,} rows, connector (Arrow)", connector_fetch, args.fetch_rounds),
        (f"{ROWS:,} rows, Statement Execution API (JSON)", api_fetch, args.fetch_rounds),
        (f"{ROWS:,} rows, DuckDB on the table's Parquet", duck_fetch, args.fetch_rounds),
    ]:
        fn()  # warm: engine session, caches
        p50, p95 = timed(fn, rounds)
        results[name] = p50
        print(f"{name:42} {p50:9.1f} {p95:9.1f}")
    select1 = results["SELECT 1, connector (Thrift)"]
    fetch = results[f"{ROWS:,} rows, connector (Arrow)"]
    print(f"\nSELECT 1 through the connector: {select1:.1f} ms p50 (goal < 20 ms): "
          f"{'met' if select1 < 20 else 'NOT met'}")
    api_ratio = results[f"{ROWS:,} rows, Statement Execution API (JSON)"] / fetch
    print(f"1M rows: connector {api_ratio:.1f}x the Statement Execution API's speed (goal >= 1x): "
          f"{'met' if api_ratio >= 1 else 'NOT met'}")
    print(f"1M rows: DuckDB in process is {fetch / results[f'{ROWS:,} rows, DuckDB on the table' + chr(39) + 's Parquet']:.1f}x "
          "faster than the connector")
    cur.close()
    conn.close()


if __name__ == "__main__":
    main()
