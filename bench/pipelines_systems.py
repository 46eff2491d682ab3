"""The three systems of the pipelines benchmark (bench/pipelines.py), each
run in its own worker process: the first update over the initial files,
then the update after one new file, timed, and the gold table read back
as a checksum row."""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime
from pathlib import Path

from tarn_server import start_tarn, tarn_binary

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"
SYSTEMS = ("tarn", "spark", "duckdb")
FLOWS = {"raw_customer_events": "bronze", "cleaned_customer_events": "silver", "customer_ml_features": "gold"}
LANDING = "/Volumes/main/raw/landing/customer_events"
UPDATE_TIMEOUT_S = 2 * 3600
DROP_FILTER = "customer_id IS NOT NULL AND amount > 0"
# Portable Spark SQL / DuckDB: the columns of GOLD_COLUMNS in bench/pipelines.py.
GOLD_CHECK = (
    "SELECT count(*), sum(total_events), sum(event_count), "
    "sum(CAST(substr(customer_id, 2) AS BIGINT) * total_events), "
    "sum(avg_amount * total_events), sum(avg_amount) FROM {gold}"
)

# The course example (issue 17), its landing path in a volume, plus a warn
# expectation; `plain` writes the two drops as a filter and counts nothing.
DLT_PIPELINE = '''import dlt
from pyspark.sql.functions import col, avg, count

@dlt.table(comment="Raw customer events from streaming source", table_properties={{"quality": "bronze"}})
def raw_customer_events():
    return spark.readStream.format("cloudFiles").option("cloudFiles.format", "json").load("{landing}/")

@dlt.table(comment="Cleaned customer events with quality checks", table_properties={{"quality": "silver"}})
{expectations}def cleaned_customer_events():
    return dlt.read_stream("raw_customer_events").select(col("customer_id"), col("event_type"),
        col("amount").cast("double"), col("event_timestamp").cast("timestamp")){where}

@dlt.table(comment="Aggregated customer features for ML", table_properties={{"quality": "gold"}})
def customer_ml_features():
    return dlt.read("cleaned_customer_events").groupBy("customer_id").agg(
        count("*").alias("total_events"), avg("amount").alias("avg_amount"), count("event_type").alias("event_count"))
'''
EXPECTATIONS = (
    '@dlt.expect_or_drop("valid_customer_id", "customer_id IS NOT NULL")\n'
    '@dlt.expect_or_drop("valid_amount", "amount > 0")\n'
    '@dlt.expect("valid_event_type", "event_type IS NOT NULL")\n'
)

# The same pipeline for Spark Declarative Pipelines: no Auto Loader, no
# expectations. Columns are read as strings, as Auto Loader reads JSON.
SDP_PIPELINE = '''from pyspark import pipelines as dp
from pyspark.sql.functions import col, avg, count

@dp.table(comment="Raw customer events from streaming source", table_properties={{"quality": "bronze"}})
def raw_customer_events():
    return spark.readStream.schema("customer_id STRING, event_type STRING, amount STRING, event_timestamp STRING").json("{landing}")

@dp.table(comment="Cleaned customer events with quality checks", table_properties={{"quality": "silver"}})
def cleaned_customer_events():
    return spark.readStream.table("raw_customer_events").select(col("customer_id"), col("event_type"),
        col("amount").cast("double"), col("event_timestamp").cast("timestamp")).where("{where}")

@dp.materialized_view(comment="Aggregated customer features for ML", table_properties={{"quality": "gold"}})
def customer_ml_features():
    return spark.read.table("cleaned_customer_events").groupBy("customer_id").agg(
        count("*").alias("total_events"), avg("amount").alias("avg_amount"), count("event_type").alias("event_count"))
'''


class Result:
    """What a worker hands back: timings, checks, notes, info."""

    def __init__(self, system: str):
        self.system = system
        self.steps, self.checks, self.info, self.notes = {}, {}, {}, []

    def step(self, name: str, seconds: float, flows: dict | None = None, **extra):
        self.steps[name] = {"seconds": seconds, "flows": flows or {}, **extra}
        shown = ", ".join(f"{k} {v:.2f}" for k, v in (flows or {}).items())
        print(f"  [{self.system}] {name}: {seconds:.2f} s" + (f" ({shown})" if shown else ""), flush=True)

    def note(self, text: str):
        print(f"  [{self.system}] {text}", flush=True)
        self.notes.append(text)

    def dump(self, path: Path):
        path.write_text(json.dumps({"system": self.system, "steps": self.steps, "checks": self.checks,
                                    "notes": self.notes, "info": self.info}, indent=1))


def run_system(system: str, args, data: Path, info: dict, out: Path):
    r = Result(system)
    try:
        {"tarn": run_tarn, "spark": run_spark, "duckdb": run_duckdb}[system](args, data, info, r)
    finally:
        r.dump(out)


def place(files, into: Path):
    """Lands files in a directory: hard links where the file system allows."""
    into.mkdir(parents=True, exist_ok=True)
    for f in files:
        try:
            os.link(f, into / f.name)
        except OSError:
            shutil.copy2(f, into / f.name)


def number(v):
    if v is None or isinstance(v, (int, float)):
        return v
    if hasattr(v, "item"):
        return v.item()
    text = str(v)
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def peak_rss(pids) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def tree(pid: int) -> list:
    import psutil

    try:
        return [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return [pid]


# ---------------------------------------------------------------- tarn


def run_tarn(args, data: Path, info: dict, r: Result):
    os.environ["DATABRICKS_CONFIG_FILE"] = "/nonexistent/databrickscfg"
    for key in [k for k in os.environ if k.startswith("DATABRICKS_") and k != "DATABRICKS_CONFIG_FILE"]:
        del os.environ[key]
    from databricks.sdk import WorkspaceClient

    binary = tarn_binary(args.tarn_bin)
    home = Path(tempfile.mkdtemp(prefix="tarn-bench-pipelines-", dir=args.work_dir))
    proc, url = start_tarn(binary, home, Path(os.environ.get("TARN_ENV_DIR", CACHE / "envs")))
    r.info["tarn_bin"] = binary
    r.info["tarn_version"] = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    try:
        w = WorkspaceClient(host=url, token=(home / "token").read_text().strip(), auth_type="pat")
        landing, main, plain = setup_tarn(w)
        place(sorted((data / "initial").glob("*.json")), landing)
        first = tarn_update(w, main, args.settle)
        r.step("first", first["seconds"], first["flows"])
        r.info["phases_first"] = first["phases"]
        r.info["quality_first"] = first["quality"]
        r.checks["update_counts_first"] = first["counts"]
        r.checks["gold_first"], r.checks["counts_first"] = tarn_tables(w)
        plain_first = tarn_update(w, plain, args.settle)
        r.step("silver_plain", plain_first["flows"]["silver"], plain_first["flows"])
        place(sorted((data / "extra").glob("*.json")), landing)
        incr = tarn_update(w, main, args.settle)
        r.step("incremental", incr["seconds"], incr["flows"], modes=incr["modes"])
        r.info["phases_incremental"] = incr["phases"]
        r.note(f"incremental update, how each flow ran: {incr['modes']}")
        r.checks["update_counts_incremental"] = incr["counts"]
        r.checks["gold_incremental"], r.checks["counts_incremental"] = tarn_tables(w)
        if args.repeat > 0:
            silver_rounds(w, main, plain, args, r)
        r.info["peak_rss_tarn_tree"] = peak_rss(tree(proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if args.keep:
            r.note(f"kept TARN_HOME {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def setup_tarn(w):
    """Schemas, the landing volume, both pipeline files and pipelines.
    Returns (landing directory on disk, pipeline id, plain pipeline id)."""
    import io

    from databricks.sdk.service.catalog import VolumeType
    from databricks.sdk.service.pipelines import FileLibrary, PipelineLibrary
    from databricks.sdk.service.workspace import ImportFormat

    for schema in ("raw", "bench", "bench_plain"):
        w.schemas.create(name=schema, catalog_name="main")
    volume = w.volumes.create(catalog_name="main", schema_name="raw", name="landing", volume_type=VolumeType.MANAGED)
    root = Path(urllib.parse.unquote(urllib.parse.urlparse(volume.storage_location).path))
    landing = root / LANDING.split("/landing/", 1)[1]
    me = w.current_user.me().user_name
    w.workspace.mkdirs(f"/Users/{me}/bench")
    ids = []
    for name, schema, source in (
        ("customer-features", "bench", DLT_PIPELINE.format(landing=LANDING, expectations=EXPECTATIONS, where="")),
        ("customer-features-plain", "bench_plain",
         DLT_PIPELINE.format(landing=LANDING, expectations="", where=f'.where("{DROP_FILTER}")')),
    ):
        path = f"/Users/{me}/bench/{name}.py"
        w.workspace.upload(path, io.BytesIO(source.encode()), format=ImportFormat.RAW, overwrite=True)
        created = w.pipelines.create(name=name, catalog="main", schema=schema, development=True,
                                     libraries=[PipelineLibrary(file=FileLibrary(path=path))])
        ids.append(created.pipeline_id)
    return landing, ids[0], ids[1]


def tarn_update(w, pipeline_id: str, settle: float, **kw) -> dict:
    """start_update, polled until it ends; its flows' times from the event
    log. It waits `settle` seconds first (new data does not arrive the
    moment an update ends), so one update's leftovers do not time the next."""
    time.sleep(settle)
    t = time.perf_counter()
    update_id = w.pipelines.start_update(pipeline_id, **kw).update_id
    while True:
        state = w.pipelines.get_update(pipeline_id, update_id).update.state.value
        if state in ("COMPLETED", "FAILED", "CANCELED"):
            break
        if time.perf_counter() - t > UPDATE_TIMEOUT_S:
            w.pipelines.stop(pipeline_id)
            raise RuntimeError(f"update {update_id} of {pipeline_id} still {state} after {UPDATE_TIMEOUT_S} s")
        time.sleep(0.05)
    seconds = time.perf_counter() - t
    events = update_events(w, pipeline_id, update_id)
    if state != "COMPLETED":
        errors = [e["message"] for e in events if e.get("level") == "ERROR"]
        raise RuntimeError(f"update {update_id} of {pipeline_id} ended {state}: {errors}")
    flows, modes, counts, quality, started = {}, {}, {}, {}, {}
    for e in events:
        name = FLOWS.get(e["origin"].get("flow_name"))
        progress = e.get("details", {}).get("flow_progress")
        if e["event_type"] != "flow_progress" or not name or not progress:
            continue
        at = stamp(e["timestamp"])
        if progress["status"] == "RUNNING":
            started.setdefault(name, at)
        elif progress["status"] == "COMPLETED":
            flows[name] = at - started.get(name, at)
            modes[name] = progress.get("mode")
            counts[f"{name}_output_rows"] = progress.get("metrics", {}).get("num_output_rows")
            if "data_quality" in progress:
                quality = progress["data_quality"]
    counts = flow_counts(counts, quality)
    # Seconds in each state, to the next one.
    marks = [(e["details"]["update_progress"]["state"], stamp(e["timestamp"]))
             for e in events if e["event_type"] == "update_progress"]
    phases = {state: round(nxt - at, 3) for (state, at), (_, nxt) in itertools.pairwise(marks)}
    return {"seconds": seconds, "flows": {k: flows[k] for k in ("bronze", "silver", "gold") if k in flows},
            "modes": modes, "counts": counts, "quality": quality, "phases": phases}


def flow_counts(counts: dict, quality: dict) -> dict:
    """The event log's figures under the generator's names."""
    out = {"rows": counts.get("bronze_output_rows"), "silver_rows": counts.get("silver_output_rows")}
    failed = {e["name"]: e["failed_records"] for e in quality.get("expectations", [])}
    names = {"valid_customer_id": "null_customer_id", "valid_amount": "non_positive_amount",
             "valid_event_type": "null_event_type"}
    out.update({names[k]: v for k, v in failed.items() if k in names})
    if "dropped_records" in quality:
        out["dropped"] = quality["dropped_records"]
    return out


def stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def update_events(w, pipeline_id: str, update_id: str) -> list:
    """The update's events, oldest first, with `details` (the REST answer)."""
    events, token = [], None
    while True:
        # tarn's page token is an offset into the same filtered list.
        query = {"filter": f"update_id='{update_id}'", "max_results": 100, "order_by": "timestamp asc"}
        if token:
            query["page_token"] = token
        body = w.api_client.do("GET", f"/api/2.0/pipelines/{pipeline_id}/events", query=query)
        events += body.get("events", [])
        token = body.get("next_page_token")
        if not token:
            return sorted(events, key=lambda e: e["timestamp"])


def silver_rounds(w, main: str, plain: str, args, r: Result):
    """Silver alone refreshed in full, with and without expectations, in
    turn, each round in the other order (the plain pipeline first catches up
    with the new file, so both read the same rows)."""
    tarn_update(w, plain, args.settle)
    rounds = []
    for i in range(args.repeat):
        silver = {}
        for pipeline in ((main, plain) if i % 2 == 0 else (plain, main)):
            refresh = tarn_update(w, pipeline, args.settle, full_refresh_selection=["cleaned_customer_events"])
            silver[pipeline] = refresh["flows"]["silver"]
        rounds.append([round(silver[main], 3), round(silver[plain], 3)])
    r.info["silver_rounds"] = rounds
    r.note(f"silver-only full refreshes (with, without expectations): {rounds}")


def tarn_tables(w):
    """The gold checksums and the bronze and silver row counts, in SQL."""
    (warehouse,) = list(w.warehouses.list())[:1]

    def row(statement):
        res = w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse.id,
                                                      wait_timeout="50s")
        if res.status.state.value != "SUCCEEDED":
            raise RuntimeError(f"{statement} failed: {res.status}")
        return [number(v) for v in res.result.data_array[0]]

    gold = row(GOLD_CHECK.format(gold="main.bench.customer_ml_features"))
    (bronze,) = row("SELECT count(*) FROM main.bench.raw_customer_events")
    (silver,) = row("SELECT count(*) FROM main.bench.cleaned_customer_events")
    return gold, {"rows": bronze, "silver_rows": silver}


# ---------------------------------------------------------------- Spark


def run_spark(args, data: Path, info: dict, r: Result):
    import pyspark

    work = Path(tempfile.mkdtemp(prefix="spark-bench-pipelines-", dir=args.work_dir))
    r.info["pyspark_version"] = pyspark.__version__
    try:
        landing = work / "landing"
        place(sorted((data / "initial").glob("*.json")), landing)
        project = work / "project"
        (project / "transformations").mkdir(parents=True)
        (project / "transformations" / "customer_events.py").write_text(
            SDP_PIPELINE.format(landing=landing, where=DROP_FILTER))
        (project / "spark-pipeline.yml").write_text(
            f"name: customer-features\nstorage: file://{work / 'storage'}\n"
            "libraries:\n  - glob:\n      include: transformations/**\n")
        for phase in ("first", "incremental"):
            if phase == "incremental":
                place(sorted((data / "extra").glob("*.json")), landing)
            run = spark_pipelines_run(args, work, project, r, phase)
            r.step(phase, run["seconds"], run["flows"], wall=run["wall"], definitions=run["definitions"])
            r.checks[f"gold_{phase}"], r.checks[f"counts_{phase}"] = spark_tables(work)
    finally:
        if args.keep:
            r.note(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def spark_pipelines_run(args, work: Path, project: Path, r: Result, phase: str) -> dict:
    """One `spark-pipelines run`, each output line stamped as it arrives."""
    venv_bin = Path(sys.executable).parent
    cmd = [str(venv_bin / "spark-pipelines"), "--remote", f"local[{args.cores}]",
           "--driver-memory", args.spark_memory,
           "--conf", "spark.sql.catalogImplementation=hive",  # tables outlive the run
           "--conf", f"spark.sql.warehouse.dir={work / 'warehouse'}",
           "--conf", f"spark.sql.shuffle.partitions={args.cores}",
           "--conf", "spark.sql.session.timeZone=UTC",
           "--conf", "spark.ui.enabled=false",
           "run", "--spec", str(project / "spark-pipeline.yml")]
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYTHONUNBUFFERED="1",
               PATH=f"{venv_bin}:{os.environ.get('PATH', '')}")
    env.pop("SPARK_HOME", None)
    marks, started, flows, peak = {}, {}, {}, 0
    with open(work / f"spark-pipelines-{phase}.log", "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            at = time.perf_counter() - t0
            log.write(f"{at:9.3f} {line}")
            if "Creating dataflow graph" in line:
                marks["graph"] = at
            elif "Starting run..." in line:
                marks["run"] = at
            elif "Run is COMPLETED" in line:
                marks["done"] = at
                peak = peak_rss(tree(proc.pid))
            elif m := re.search(r"Flow \S+\.(\w+) (is RUNNING|has COMPLETED)", line):
                name = FLOWS.get(m.group(1))
                if name and m.group(2) == "is RUNNING":
                    started.setdefault(name, at)
                elif name:
                    flows[name] = at - started.get(name, at)
        rc = proc.wait()
        wall = time.perf_counter() - t0
    if rc != 0 or not {"graph", "run", "done"} <= marks.keys():
        tail = (work / f"spark-pipelines-{phase}.log").read_text()[-3000:]
        raise RuntimeError(f"spark-pipelines run ({phase}) failed, exit {rc}:\n{tail}")
    r.info[f"peak_rss_{phase}"] = peak
    # The run proper (StartRun to its end), what was spent before it on the
    # graph and the definitions, and the whole command with both JVMs' start.
    return {"seconds": marks["done"] - marks["run"], "definitions": marks["run"] - marks["graph"], "wall": wall,
            "flows": {k: flows[k] for k in ("bronze", "silver", "gold") if k in flows}}


def spark_tables(work: Path):
    """The gold checksums and silver count, read from the tables' parquet
    files with DuckDB (no second JVM)."""
    import duckdb

    def files(table):
        found = [p for p in work.rglob(f"{table}/*.parquet") if "_spark_metadata" not in p.parts]
        if not found:
            raise RuntimeError(f"no parquet files of {table} under {work}")
        return "[" + ", ".join(f"'{p}'" for p in found) + "]"

    con = duckdb.connect()
    gold = con.execute(GOLD_CHECK.format(gold=f"read_parquet({files('customer_ml_features')})")).fetchone()
    silver = con.execute(f"SELECT count(*) FROM read_parquet({files('cleaned_customer_events')})").fetchone()[0]
    bronze = con.execute(f"SELECT count(*) FROM read_parquet({files('raw_customer_events')})").fetchone()[0]
    con.close()
    return [number(v) for v in gold], {"rows": bronze, "silver_rows": silver}


# ---------------------------------------------------------------- DuckDB

DUCKDB_COLUMNS = "{'customer_id': 'VARCHAR', 'event_type': 'VARCHAR', 'amount': 'VARCHAR', 'event_timestamp': 'VARCHAR'}"
DUCKDB_SILVER = (
    "SELECT customer_id, event_type, CAST(amount AS DOUBLE) AS amount, "
    "CAST(event_timestamp AS TIMESTAMP) AS event_timestamp FROM {src} "
    "WHERE customer_id IS NOT NULL AND CAST(amount AS DOUBLE) > 0"
)
DUCKDB_GOLD = (
    "SELECT customer_id, count(*) AS total_events, avg(amount) AS avg_amount, "
    "count(event_type) AS event_count FROM {src} GROUP BY customer_id"
)


def run_duckdb(args, data: Path, info: dict, r: Result):
    import duckdb

    work = Path(tempfile.mkdtemp(prefix="duckdb-bench-pipelines-", dir=args.work_dir))
    con = duckdb.connect(str(work / "bench.duckdb"))
    con.execute(f"SET threads = {args.cores}")
    con.execute(f"SET temp_directory = '{work / 'tmp'}'")
    r.info["duckdb_version"] = duckdb.__version__

    def read(pattern):
        return f"read_json('{pattern}', format = 'newline_delimited', columns = {DUCKDB_COLUMNS})"

    def timed(statements: dict) -> dict:
        out = {}
        for name, sql in statements.items():
            t = time.perf_counter()
            con.execute(sql)
            out[name] = time.perf_counter() - t
        return out

    try:
        flows = timed({
            "bronze": f"CREATE TABLE raw_customer_events AS SELECT * FROM {read(data / 'initial' / '*.json')}",
            "silver": "CREATE TABLE cleaned_customer_events AS " + DUCKDB_SILVER.format(src="raw_customer_events"),
            # A primary key, for the merge of the incremental update.
            "gold": "CREATE TABLE customer_ml_features (customer_id VARCHAR PRIMARY KEY, total_events BIGINT, "
                    "avg_amount DOUBLE, event_count BIGINT); INSERT INTO customer_ml_features "
                    + DUCKDB_GOLD.format(src="cleaned_customer_events"),
        })
        r.step("first", sum(flows.values()), flows)
        duckdb_checks(con, r, "first")
        flows = timed({
            "bronze": f"CREATE TEMP TABLE new_raw AS SELECT * FROM {read(data / 'extra' / '*.json')}; "
                      "INSERT INTO raw_customer_events SELECT * FROM new_raw",
            "silver": "CREATE TEMP TABLE new_silver AS " + DUCKDB_SILVER.format(src="new_raw") + "; "
                      "INSERT INTO cleaned_customer_events SELECT * FROM new_silver",
            # The new rows' aggregate merged into the old: counts add, the
            # average is re-weighted.
            "gold": "INSERT INTO customer_ml_features " + DUCKDB_GOLD.format(src="new_silver") + " "
                    "ON CONFLICT (customer_id) DO UPDATE SET "
                    "avg_amount = (avg_amount * total_events + excluded.avg_amount * excluded.total_events) "
                    "/ (total_events + excluded.total_events), "
                    "total_events = total_events + excluded.total_events, "
                    "event_count = event_count + excluded.event_count",
        })
        r.step("incremental", sum(flows.values()), flows)
        duckdb_checks(con, r, "incremental")
        r.info["peak_rss"] = peak_rss([os.getpid()])
    finally:
        con.close()
        if args.keep:
            r.note(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def duckdb_checks(con, r: Result, phase: str):
    r.checks[f"gold_{phase}"] = [number(v) for v in con.execute(GOLD_CHECK.format(gold="customer_ml_features")).fetchone()]
    bronze = con.execute("SELECT count(*) FROM raw_customer_events").fetchone()[0]
    silver = con.execute("SELECT count(*) FROM cleaned_customer_events").fetchone()[0]
    r.checks[f"counts_{phase}"] = {"rows": bronze, "silver_rows": silver}
