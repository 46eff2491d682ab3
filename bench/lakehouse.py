"""Lakehouse benchmark: tarn (Sail engine, Delta through the gateway) against
Apache Spark local mode and DuckDB on one generated data set.

The data set (events, N rows, as parquet and as CSV, plus a `users`
dimension table) is generated once with numpy/pyarrow into
~/.cache/tarn/bench-data/events-<N>/. Each system then runs in its own
process, with the same number of cores:

  tarn    `tarn serve` on loopback, a single-node cluster (num_workers=0,
          node type local-<cores>c), PySpark over Spark Connect through the
          gateway; tables are Delta in main.bench.
  spark   pyspark local[<cores>], tables are parquet in a local warehouse
          (there are no Delta jars here).
  duckdb  a DuckDB database file, threads=<cores>.

Steps: ingest parquet -> table, ingest CSV -> table, a group-by on
DATE_TRUNC('HOUR', ts) and event_type, a join with users grouped by segment,
a point filter on user_id, then OPTIMIZE ... ZORDER BY (user_id) in tarn (the
nearest in Spark: rewrite the table sorted by user_id; DuckDB: nothing) and
the point filter again. Every query runs once to warm and then --repeat
times; the best time counts. Ingest runs the same way, as overwrites of the
table the warm-up created. Results are collected, and the answers of the
three systems are compared; a mismatch fails the run.

  python bench/lakehouse.py --rows 10000000 --json out.json
"""

import argparse
import datetime
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"
SPARK_VERSION = "16.4.x-scala2.13"
SYSTEMS = ("tarn", "spark", "duckdb")
POINT_USER = 4242
N_USERS = 100_000
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
DAYS = 30

EVENTS_DDL = "event_id BIGINT, user_id BIGINT, event_type STRING, amount DOUBLE, ts TIMESTAMP, country STRING"
EVENTS_DUCKDB_COLUMNS = (
    "{'event_id': 'BIGINT', 'user_id': 'BIGINT', 'event_type': 'VARCHAR', "
    "'amount': 'DOUBLE', 'ts': 'TIMESTAMPTZ', 'country': 'VARCHAR'}"
)

# Spark SQL, run unchanged by Sail, Spark and DuckDB; {events} and {users}
# are the systems' table names.
QUERIES = {
    "groupby_hour": (
        "SELECT date_trunc('HOUR', ts) AS hour, event_type, count(*) AS n, sum(amount) AS total "
        "FROM {events} GROUP BY date_trunc('HOUR', ts), event_type ORDER BY hour, event_type"
    ),
    "join_segment": (
        "SELECT u.segment, count(*) AS n, sum(e.amount) AS total "
        "FROM {events} e JOIN {users} u ON e.user_id = u.user_id "
        "GROUP BY u.segment ORDER BY u.segment"
    ),
    "point_filter": (
        "SELECT event_id, user_id, event_type, amount, ts, country FROM {events} "
        f"WHERE user_id = {POINT_USER} ORDER BY event_id"
    ),
}
TARGET_FILE_SIZE = 32 * 1024 * 1024
CHECK_QUERY = "SELECT count(*) AS n, sum(amount) AS total, count(DISTINCT user_id) AS users FROM {table}"

STEPS = [
    ("ingest_parquet", "ingest parquet -> table"),
    ("ingest_csv", "ingest CSV -> table"),
    ("groupby_hour", "group-by DATE_TRUNC(hour), type"),
    ("join_segment", "join users, group by segment"),
    ("point_filter", "point filter user_id (plain)"),
    ("optimize", "OPTIMIZE ZORDER / sort rewrite"),
    ("point_filter_zorder", "point filter user_id (Z-order)"),
]


# ---------------------------------------------------------------- data set


def data_dir(rows: int) -> Path:
    return CACHE / "bench-data" / f"events-{rows}"


def generate(rows: int, files: int = 10) -> Path:
    """Events as `files` parquet files and as many CSV files, users as one
    parquet file; kept between runs (a .ready marker says it is complete)."""
    out = data_dir(rows)
    if (out / ".ready").exists():
        return out
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    shutil.rmtree(out, ignore_errors=True)
    for sub in ("parquet", "csv", "users"):
        (out / sub).mkdir(parents=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(20260101)
    types = np.array(["view", "click", "add_to_cart", "remove_from_cart", "checkout",
                      "purchase", "refund", "search", "login", "logout"])
    type_p = np.array([30, 25, 10, 3, 5, 6, 1, 12, 5, 3], dtype=float)
    countries = np.array(["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "AU", "NL",
                          "ES", "IT", "SE", "PL", "MX", "KR", "CH", "NO", "DK", "FI"])
    country_p = np.linspace(20, 1, len(countries))
    start_us = int(START.timestamp()) * 1_000_000
    per_file = math.ceil(rows / files)
    for i in range(files):
        lo, hi = i * per_file, min(rows, (i + 1) * per_file)
        if lo >= hi:
            break
        n = hi - lo
        seconds = rng.integers(0, DAYS * 86400, n)
        table = pa.table({
            "event_id": pa.array(np.arange(lo, hi, dtype=np.int64)),
            "user_id": pa.array(rng.integers(1, N_USERS + 1, n, dtype=np.int64)),
            "event_type": pa.array(types[rng.choice(len(types), n, p=type_p / type_p.sum())]),
            "amount": pa.array(np.round(rng.gamma(2.0, 20.0, n), 2)),
            "ts": pa.array(start_us + seconds * 1_000_000, type=pa.timestamp("us", tz="UTC")),
            "country": pa.array(countries[rng.choice(len(countries), n, p=country_p / country_p.sum())]),
        })
        pq.write_table(table, out / "parquet" / f"part-{i:05d}.parquet")
        # CSV timestamps as 'YYYY-MM-DD HH:MM:SS', read back in UTC.
        csv = table.set_column(4, "ts", pc.strftime(table["ts"].cast(pa.timestamp("s", tz="UTC")), format="%Y-%m-%d %H:%M:%S"))
        pacsv.write_csv(csv, out / "csv" / f"part-{i:05d}.csv")
    segments = np.array(["consumer", "smb", "enterprise", "education", "government"])
    users = pa.table({
        "user_id": pa.array(np.arange(1, N_USERS + 1, dtype=np.int64)),
        "segment": pa.array(segments[rng.choice(len(segments), N_USERS, p=[0.55, 0.25, 0.1, 0.06, 0.04])]),
        "signup_date": pa.array(
            np.datetime64("2020-01-01") + rng.integers(0, 6 * 365, N_USERS).astype("timedelta64[D]"),
            type=pa.date32()),
    })
    pq.write_table(users, out / "users" / "users.parquet")
    (out / ".ready").write_text(json.dumps({"rows": rows, "users": N_USERS, "files": files}))
    print(f"generated {rows:,} events in {time.perf_counter() - t0:.1f} s into {out}", flush=True)
    return out


# ------------------------------------------------------------ shared helpers


def normalize(value):
    """One comparable, JSON-able form for a result cell of any system."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return normalize(value.item())
    if isinstance(value, (int, float, str)) or value is None:
        return value
    return str(value)


def rows_of(result) -> list:
    return [[normalize(v) for v in row] for row in result]


def peak_rss(pid: int, with_children: bool = True) -> int | None:
    """Peak resident set (VmHWM) of a process and its descendants, in bytes."""
    def hwm(p):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        return None

    total = hwm(pid)
    if total is None:
        return None
    if with_children:
        try:
            import psutil

            for child in psutil.Process(pid).children(recursive=True):
                total += hwm(child.pid) or 0
        except Exception:
            pass
    return total


class Runner:
    """Times steps and keeps their (normalized) answers."""

    def __init__(self, system: str, repeat: int):
        self.system, self.repeat = system, repeat
        self.steps: dict = {}
        self.checks: dict = {}
        self.notes: list = []
        self.info: dict = {}

    def timed(self, step: str, fn, warm: bool = True, repeat: int | None = None):
        """Runs fn once to warm (unless warm=False), then `repeat` times; keeps the best."""
        if warm:
            fn()
        runs, result = [], None
        for _ in range(self.repeat if repeat is None else repeat):
            t = time.perf_counter()
            result = fn()
            runs.append(time.perf_counter() - t)
        self.steps[step] = {"seconds": min(runs), "runs": runs}
        if result is not None:
            self.steps[step]["result"] = rows_of(result)
        print(f"  [{self.system}] {step}: {min(runs):.3f} s (runs: {', '.join(f'{r:.3f}' for r in runs)})", flush=True)
        return result

    def note(self, text: str):
        print(f"  [{self.system}] {text}", flush=True)
        self.notes.append(text)

    def dump(self, path: Path):
        path.write_text(json.dumps({"system": self.system, "steps": self.steps, "checks": self.checks,
                                    "notes": self.notes, "info": self.info}, indent=1))


# ---------------------------------------------------------------- tarn


def has_gateway(binary: Path) -> bool:
    """Whether this build has the Spark Connect gateway (a stale build may not)."""
    try:
        out = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--spark-connect-port" in out.stdout


def default_tarn_bin() -> tuple[str, str]:
    """The release build if present, else the debug build; a build without
    the gateway is passed over."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))
    build = f"CARGO_TARGET_DIR={target} cargo build --release -p tarn"
    release, debug = target / "release" / "tarn", target / "debug" / "tarn"
    skipped = ""
    if release.exists():
        if has_gateway(release):
            why = "release build"
            if debug.exists() and debug.stat().st_mtime > release.stat().st_mtime:
                why += f", older than the debug build: it may be stale ({build})"
            return str(release), why
        skipped = "the release build is stale (no Spark Connect gateway); "
    if debug.exists() and has_gateway(debug):
        return str(debug), f"debug build; {skipped}for a release build: {build}"
    raise SystemExit(f"no usable tarn binary under {target}/{{release,debug}}: build it with {build}, or pass --tarn-bin")


def start_tarn(binary: str, home: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(TARN_HOME=str(home), TARN_ENV_DIR=os.environ.get("TARN_ENV_DIR", str(CACHE / "envs")),
               RUST_LOG="warn")
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        env.setdefault("TARN_UV", str(uv))
    log = open(home / "serve.log", "ab")
    proc = subprocess.Popen([binary, "serve", "--port", "0", "--spark-connect-port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=log, cwd=home)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline().decode()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}"
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"tarn did not start: {(home / 'serve.log').read_text()[-2000:]}")


def delta_active_adds(location: str) -> dict | None:
    """The add actions of the table's current version (path -> stats JSON or
    None), from its _delta_log: checkpoint, later commits, then staged
    commits not yet published. None if there is no log."""
    root = Path(urllib.parse.unquote(urllib.parse.urlparse(location).path))
    log = root / "_delta_log"
    if not log.is_dir():
        return None
    files, after = {}, -1
    last = log / "_last_checkpoint"
    if last.exists():
        import pyarrow.parquet as pq

        cp = json.loads(last.read_text())
        after = cp["version"]
        parts = sorted(log.glob(f"{after:020d}.checkpoint*.parquet"))
        for part in parts:
            for add in pq.read_table(part, columns=["add"]).column("add").to_pylist():
                if add:
                    files[add["path"]] = add.get("stats")
    commits = {int(c.name[:20]): c for c in log.glob("*.json") if re.fullmatch(r"\d{20}\.json", c.name)}
    # Coordinated commits not yet published: a version with one staged file.
    staged: dict = {}
    for c in (log / "_staged_commits").glob("*.json"):
        staged.setdefault(int(c.name.split(".")[0]), []).append(c)
    version = max(commits, default=-1) + 1
    while len(staged.get(version, [])) == 1:
        commits[version] = staged[version][0]
        version += 1
    for v in sorted(commits):
        if v <= after:
            continue
        for line in commits[v].read_text().splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "add" in action:
                files[action["add"]["path"]] = action["add"].get("stats")
            elif "remove" in action:
                files.pop(action["remove"]["path"], None)
    return files


def delta_active_files(location: str) -> tuple[int, str]:
    """How many data files the table's current version has."""
    adds = delta_active_adds(location)
    if adds is None:
        root = Path(urllib.parse.unquote(urllib.parse.urlparse(location).path))
        return sum(1 for _ in root.rglob("*.parquet")), "parquet files in storage location"
    return len(adds), "active files in _delta_log"


def files_to_scan(location: str, column: str, value) -> tuple[int, int]:
    """(files whose min/max statistics admit `column = value`, all files):
    what a reader that skips data by file statistics has to open."""
    adds = delta_active_adds(location) or {}
    admitting = 0
    for stats in adds.values():
        try:
            s = json.loads(stats) if stats else {}
            lo, hi = s["minValues"][column], s["maxValues"][column]
            admitting += lo <= value <= hi
        except (KeyError, TypeError, ValueError):
            admitting += 1
    return admitting, len(adds)


def sail_version(engine_pid: int) -> str | None:
    """pysail's version in the environment the engine runs from."""
    try:
        import psutil

        python = Path(psutil.Process(engine_pid).cmdline()[0])
        found = sorted(python.parent.parent.glob("lib/python*/site-packages/pysail-*.dist-info"))
        return found[-1].name.removeprefix("pysail-").removesuffix(".dist-info") if found else None
    except Exception:
        return None


def run_tarn(args, data: Path, r: Runner):
    os.environ["DATABRICKS_CONFIG_FILE"] = "/nonexistent/databrickscfg"
    for key in [k for k in os.environ if k.startswith("DATABRICKS_") and k != "DATABRICKS_CONFIG_FILE"]:
        del os.environ[key]
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import SparkSession

    home = Path(tempfile.mkdtemp(prefix="tarn-bench-lake-", dir=args.work_dir))
    proc, url = start_tarn(args.tarn_bin, home)
    r.info["tarn_bin"] = args.tarn_bin
    r.info["tarn_version"] = subprocess.run([args.tarn_bin, "--version"], capture_output=True, text=True).stdout.strip()
    spark = cluster = w = None
    try:
        token = (home / "token").read_text().strip()
        w = WorkspaceClient(host=url, token=token, auth_type="pat")
        node_types = sorted(w.clusters.list_node_types().node_types, key=lambda n: n.num_cores)
        fitting = [n for n in node_types if n.num_cores <= args.cores] or node_types[:1]
        node = fitting[-1]
        if node.num_cores != args.cores:
            r.note(f"no node type with {args.cores} cores; using {node.node_type_id}")
        r.info["node_type"] = node.node_type_id
        t = time.perf_counter()
        cluster = w.clusters.create_and_wait(cluster_name="bench-lakehouse", spark_version=SPARK_VERSION,
                                             num_workers=0, node_type_id=node.node_type_id,
                                             timeout=datetime.timedelta(minutes=10))
        r.info["cluster_start_s"] = time.perf_counter() - t
        engine_pid = cluster.spark_context_id
        r.info["engine_pid"] = engine_pid
        r.info["sail_version"] = sail_version(engine_pid)
        spark = SparkSession.builder.remote(cluster.default_tags["SparkConnectUrl"] + f";token={token}").create()
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        r.info["engine_spark_version"] = spark.version
        try:
            w.schemas.create(name="bench", catalog_name="main")
        except Exception as e:  # an existing schema is fine
            if "already exists" not in str(e).lower() and "conflict" not in type(e).__name__.lower():
                raise
        events, events_csv, users = "main.bench.events", "main.bench.events_csv", "main.bench.users"

        spark.read.parquet(str(data / "users")).write.mode("overwrite").saveAsTable(users)
        r.timed("ingest_parquet", lambda: spark.read.parquet(str(data / "parquet"))
                .write.mode("overwrite").saveAsTable(events))
        r.timed("ingest_csv", lambda: spark.read.schema(EVENTS_DDL).option("header", True)
                .csv(str(data / "csv")).write.mode("overwrite").saveAsTable(events_csv))
        for table in (events, events_csv):
            r.checks[table.split(".")[-1]] = rows_of(spark.sql(CHECK_QUERY.format(table=table)).collect())

        def sql(name):
            q = QUERIES[name].format(events=events, users=users)
            return lambda: spark.sql(q).collect()

        r.timed("groupby_hour", sql("groupby_hour"))
        r.timed("join_segment", sql("join_segment"))
        r.timed("point_filter", sql("point_filter"))

        def file_count():
            try:
                detail = spark.sql(f"DESCRIBE DETAIL {events}").collect()[0].asDict()
                return int(detail["numFiles"]), "DESCRIBE DETAIL numFiles"
            except Exception as e:
                r.info.setdefault("describe_detail_error", first_line(e))
                return delta_active_files(w.tables.get(events).storage_location)

        before, how = file_count()
        r.info["files_before_optimize"], r.info["files_count_method"] = before, how
        location = w.tables.get(events).storage_location
        r.info["files_to_scan_before_optimize"] = files_to_scan(location, "user_id", POINT_USER)
        # File sizing is tarn's to choose: files of ~32 MiB let the Z-ordered
        # layout skip most of the table for a point filter.
        spark.sql(f"ALTER TABLE {events} SET TBLPROPERTIES ('delta.targetFileSize' = '{TARGET_FILE_SIZE}')").collect()
        try:
            r.timed("optimize", lambda: spark.sql(f"OPTIMIZE {events} ZORDER BY (user_id)").collect(),
                    warm=False, repeat=1)
            r.info["optimize"] = "ok"
        except Exception as e:
            r.info["optimize"] = f"failed: {first_line(e)}"
            r.note(f"OPTIMIZE {events} ZORDER BY (user_id) failed: {first_line(e)}; "
                   "the Z-order filter runs on the table as ingested")
        after, how_after = file_count()
        r.info["files_after_optimize"] = after
        r.info["files_to_scan_after_optimize"] = files_to_scan(location, "user_id", POINT_USER)
        r.note(f"data files of {events}: {before} before OPTIMIZE, {after} after ({how_after})")
        (scan_before, total_before), (scan_after, total_after) = (
            r.info["files_to_scan_before_optimize"], r.info["files_to_scan_after_optimize"])
        r.note(f"point filter user_id = {POINT_USER}: files whose statistics admit it "
               f"{scan_before} of {total_before} before OPTIMIZE ZORDER, {scan_after} of {total_after} after")
        r.timed("point_filter_zorder", sql("point_filter"))
        r.checks["events_after_optimize"] = rows_of(spark.sql(CHECK_QUERY.format(table=events)).collect())
        r.info["peak_rss_engine"] = peak_rss(engine_pid)
        r.info["peak_rss_gateway"] = peak_rss(proc.pid, with_children=False)
    finally:
        if spark is not None:
            try:
                spark.stop()
            except Exception:
                pass
        if cluster is not None:
            try:
                w.clusters.permanent_delete(cluster.cluster_id)
            except Exception:
                pass
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if args.keep:
            print(f"  [tarn] kept TARN_HOME {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------- Spark


def run_spark(args, data: Path, r: Runner):
    import pyspark
    from pyspark.sql import SparkSession

    work = Path(tempfile.mkdtemp(prefix="spark-bench-lake-", dir=args.work_dir))
    spark = (SparkSession.builder.master(f"local[{args.cores}]").appName("bench-lakehouse")
             .config("spark.driver.memory", args.spark_memory)
             .config("spark.sql.shuffle.partitions", str(args.cores))
             .config("spark.default.parallelism", str(args.cores))
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.warehouse.dir", str(work / "warehouse"))
             .config("spark.driver.extraJavaOptions", f"-Djava.io.tmpdir={work} -Dderby.system.home={work}")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    r.info["pyspark_version"] = pyspark.__version__
    try:
        events, events_csv, users, events_sorted = "events", "events_csv", "users", "events_sorted"
        spark.read.parquet(str(data / "users")).write.mode("overwrite").format("parquet").saveAsTable(users)
        r.timed("ingest_parquet", lambda: spark.read.parquet(str(data / "parquet"))
                .write.mode("overwrite").format("parquet").saveAsTable(events))
        r.timed("ingest_csv", lambda: spark.read.schema(EVENTS_DDL).option("header", True)
                .csv(str(data / "csv")).write.mode("overwrite").format("parquet").saveAsTable(events_csv))
        for table in (events, events_csv):
            r.checks[table] = rows_of(spark.sql(CHECK_QUERY.format(table=table)).collect())

        def sql(name, table=events):
            q = QUERIES[name].format(events=table, users=users)
            return lambda: spark.sql(q).collect()

        r.timed("groupby_hour", sql("groupby_hour"))
        r.timed("join_segment", sql("join_segment"))
        r.timed("point_filter", sql("point_filter"))
        # No Delta here: the nearest to Z-ordering is a copy range-partitioned
        # and sorted by user_id, so parquet min/max statistics skip row groups.
        r.timed("optimize", lambda: spark.table(events).orderBy("user_id")
                .write.mode("overwrite").format("parquet").saveAsTable(events_sorted), warm=False, repeat=1)
        r.timed("point_filter_zorder", sql("point_filter", events_sorted))
        r.checks["events_after_optimize"] = rows_of(spark.sql(CHECK_QUERY.format(table=events_sorted)).collect())
        r.info["peak_rss_engine"] = peak_rss(os.getpid())
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- DuckDB


def run_duckdb(args, data: Path, r: Runner):
    import duckdb

    work = Path(tempfile.mkdtemp(prefix="duckdb-bench-lake-", dir=args.work_dir))
    con = duckdb.connect(str(work / "bench.duckdb"))
    con.execute(f"SET threads = {args.cores}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET temp_directory = '{work / 'tmp'}'")
    r.info["duckdb_version"] = duckdb.__version__
    try:
        con.execute(f"CREATE OR REPLACE TABLE users AS SELECT * FROM read_parquet('{data / 'users'}/*.parquet')")
        r.timed("ingest_parquet", lambda: con.execute(
            f"CREATE OR REPLACE TABLE events AS SELECT * FROM read_parquet('{data / 'parquet'}/*.parquet')") and None)
        r.timed("ingest_csv", lambda: con.execute(
            f"CREATE OR REPLACE TABLE events_csv AS SELECT * FROM read_csv('{data / 'csv'}/*.csv', "
            f"header = true, columns = {EVENTS_DUCKDB_COLUMNS})") and None)
        for table in ("events", "events_csv"):
            r.checks[table] = rows_of(con.execute(CHECK_QUERY.format(table=table)).fetchall())

        def sql(name):
            q = QUERIES[name].format(events="events", users="users")
            return lambda: con.execute(q).fetchall()

        r.timed("groupby_hour", sql("groupby_hour"))
        r.timed("join_segment", sql("join_segment"))
        r.timed("point_filter", sql("point_filter"))
        # A plain table: DuckDB's own zone maps, no re-clustering.
        r.timed("point_filter_zorder", sql("point_filter"))
        r.checks["events_after_optimize"] = r.checks["events"]
        r.info["peak_rss_engine"] = peak_rss(os.getpid())
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- compare, report


def first_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-8, abs_tol=1e-6)
    return a == b


def diff_rows(a: list, b: list) -> str | None:
    if len(a) != len(b):
        return f"{len(a)} rows vs {len(b)} rows"
    for i, (x, y) in enumerate(zip(a, b)):
        if len(x) != len(y) or not all(same(p, q) for p, q in zip(x, y)):
            return f"row {i}: {x} vs {y}"
    return None


def compare(results: dict) -> list:
    """Differences between the answers of the systems, against the first one."""
    systems = list(results)
    if len(systems) < 2:
        return []
    ref = systems[0]
    problems = []
    for other in systems[1:]:
        for step in ("groupby_hour", "join_segment", "point_filter", "point_filter_zorder"):
            a = results[ref]["steps"].get(step, {}).get("result")
            b = results[other]["steps"].get(step, {}).get("result")
            if a is None or b is None:
                problems.append(f"{step}: no answer from {ref if a is None else other}")
            elif (d := diff_rows(a, b)):
                problems.append(f"{step}: {ref} and {other} differ: {d}")
        for check in ("events", "events_csv", "events_after_optimize"):
            a, b = results[ref]["checks"].get(check), results[other]["checks"].get(check)
            if a is None or b is None:
                problems.append(f"table check {check}: missing")
            elif (d := diff_rows(a, b)):
                problems.append(f"table check {check} (count, sum(amount), distinct users): {ref} and {other} differ: {d}")
    for system in systems:
        checks = results[system]["checks"]
        if "events" in checks and (d := diff_rows(checks["events"], checks.get("events_csv", []))):
            problems.append(f"{system}: the CSV ingest differs from the parquet ingest: {d}")
    return problems


def fmt_s(v):
    return f"{v:9.3f}" if v is not None else f"{'-':>9}"


def fmt_ratio(a, b):
    return f"{a / b:9.2f}x" if a is not None and b else f"{'-':>10}"


def fmt_bytes(v):
    return f"{v / 2**20:,.0f} MiB" if v else "-"


def report(args, results: dict, problems: list):
    def secs(system, step):
        return results.get(system, {}).get("steps", {}).get(step, {}).get("seconds")

    print()
    print(f"lakehouse benchmark: {args.rows:,} events, {args.cores} cores, best of {args.repeat} warm runs")
    print(f"{'step':34} {'tarn s':>9} {'spark s':>9} {'duckdb s':>9} {'spark/tarn':>10} {'tarn/duckdb':>11}")
    table = []
    for step, label in STEPS:
        t, s, d = secs("tarn", step), secs("spark", step), secs("duckdb", step)
        print(f"{label:34} {fmt_s(t)} {fmt_s(s)} {fmt_s(d)} {fmt_ratio(s, t)} {fmt_ratio(t, d):>11}")
        table.append({"step": step, "label": label, "tarn_s": t, "spark_s": s, "duckdb_s": d,
                      "spark_over_tarn": s / t if s and t else None,
                      "tarn_over_duckdb": t / d if t and d else None})
    print("(spark/tarn > 1: tarn is faster than Spark; tarn/duckdb > 1: DuckDB is faster than tarn)")
    tarn = results.get("tarn", {}).get("info", {})
    if tarn:
        print(f"tarn: {tarn.get('tarn_bin')} ({args.tarn_bin_why}); {tarn.get('tarn_version')}; "
              f"Sail {tarn.get('sail_version')} (reports Spark {tarn.get('engine_spark_version')}); "
              f"node type {tarn.get('node_type')}, cluster RUNNING in {tarn.get('cluster_start_s', 0):.1f} s")
        print(f"tarn OPTIMIZE ZORDER BY (user_id): {tarn.get('optimize')}; data files "
              f"{tarn.get('files_before_optimize')} -> {tarn.get('files_after_optimize')} ({tarn.get('files_count_method')})")
        if tarn.get("describe_detail_error"):
            print(f"tarn DESCRIBE DETAIL failed: {tarn['describe_detail_error']}")
    for system in SYSTEMS:
        info = results.get(system, {}).get("info")
        if info:
            extra = f", gateway (tarn serve) {fmt_bytes(info.get('peak_rss_gateway'))}" if system == "tarn" else ""
            version = {"tarn": f"(Sail {info.get('sail_version')})", "spark": info.get("pyspark_version"),
                       "duckdb": info.get("duckdb_version")}[system]
            print(f"peak RSS {system} {version}: engine {fmt_bytes(info.get('peak_rss_engine'))}{extra}")
    if problems:
        print("\nANSWERS DIFFER: the timings above compare different results")
        for p in problems:
            print(f"  MISMATCH {p}")
    elif len(results) > 1:
        print(f"answers: the same in {', '.join(results)} (row counts, sums within 1e-8 relative)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "rows": args.rows, "cores": args.cores, "repeat": args.repeat, "data": str(data_dir(args.rows)),
            "table": table, "mismatches": problems, "systems": results}, indent=1))
        print(f"results written to {args.json}")


# ---------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000, help="events to generate (default 10,000,000)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs after the warm-up; the best counts (default 3)")
    p.add_argument("--cores", type=int, default=os.cpu_count(), help="cores for every system (default: the host's)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of tarn,spark,duckdb")
    p.add_argument("--tarn-bin", help="tarn binary (default: the release build if present, else the debug build)")
    p.add_argument("--spark-memory", default="4g", help="spark.driver.memory for Spark local mode (default 4g)")
    p.add_argument("--json", help="also write the results as JSON to this path")
    p.add_argument("--work-dir", help="where tables are written (default: the system temp dir)")
    p.add_argument("--keep", action="store_true", help="keep tarn's TARN_HOME (its Delta tables) after the run")
    p.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        r = Runner(args.worker, args.repeat)
        try:
            {"tarn": run_tarn, "spark": run_spark, "duckdb": run_duckdb}[args.worker](args, data_dir(args.rows), r)
        finally:
            r.dump(Path(args.out))
        return

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := set(systems) - set(SYSTEMS):
        raise SystemExit(f"unknown systems: {', '.join(sorted(unknown))}")
    if "tarn" in systems:
        if args.tarn_bin:
            args.tarn_bin_why = "--tarn-bin"
        else:
            args.tarn_bin, args.tarn_bin_why = default_tarn_bin()
        print(f"tarn binary: {args.tarn_bin} ({args.tarn_bin_why})", flush=True)
    generate(args.rows)

    results, failed = {}, []
    with tempfile.TemporaryDirectory(prefix="bench-lake-results-") as tmp:
        for system in systems:
            out = Path(tmp) / f"{system}.json"
            cmd = [sys.executable, __file__, "--worker", system, "--out", str(out), "--rows", str(args.rows),
                   "--repeat", str(args.repeat), "--cores", str(args.cores), "--spark-memory", args.spark_memory]
            if args.tarn_bin:
                cmd += ["--tarn-bin", args.tarn_bin]
            if args.work_dir:
                cmd += ["--work-dir", args.work_dir]
            if args.keep:
                cmd.append("--keep")
            print(f"running {system} ...", flush=True)
            t = time.perf_counter()
            # Timestamps come back as Python datetimes in the process's zone.
            rc = subprocess.run(cmd, env=dict(os.environ, TZ="UTC")).returncode
            if rc != 0 or not out.exists():
                failed.append(f"{system} (exit {rc})")
            if out.exists():
                results[system] = json.loads(out.read_text())
            print(f"{system} done in {time.perf_counter() - t:.0f} s", flush=True)
    complete = {s: v for s, v in results.items() if s not in {f.split()[0] for f in failed}}
    problems = compare(complete)
    report(args, results, problems)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    if failed or problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
