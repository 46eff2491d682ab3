"""Analysis of Python pipeline definitions (`python/tarn/pipeline.py` and
`dlt.py`) against a real Sail engine on loopback: sources go in as tarn
sends them, the printed `Definitions` JSON comes out, and the relations it
holds are decoded and, where they read real tables, executed."""

import base64
import contextlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pysail.spark", reason="pysail is not installed")

REPO = Path(__file__).resolve().parents[2]
WORKER_DIR = REPO / "python" / "tarn"
sys.path.insert(0, str(WORKER_DIR))

import dlt  # noqa: E402
import pipeline  # noqa: E402

PATH = "/Workspace/Users/a/p.py"


@pytest.fixture(scope="module")
def sail():
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    host, port = server.listening_address
    yield f"sc://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def spark(sail):
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(sail).create()
    # Definitions run as in a worker, where this is the active session (an
    # earlier test module may have left its own session active).
    from pyspark.sql.connect.session import SparkSession as Connect

    active, default = getattr(Connect._active_session, "session", None), Connect._default_session
    Connect._active_session.session = session
    Connect._default_session = session
    yield session
    Connect._active_session.session, Connect._default_session = active, default
    session.stop()


def analyze(spark, *sources, known=(), configuration=None):
    """Runs the analysis as tarn does and parses what it printed last."""
    request = {
        "catalog": "main",
        "schema": "default",
        "configuration": configuration or {},
        "sources": [source(*s) if isinstance(s, tuple) else source(s) for s in sources],
        "known_datasets": list(known),
    }
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert pipeline.analyze(json.dumps(request), {"spark": spark}) is None
    return parse_definitions(out.getvalue())


def source(code, path=PATH, first_line=1):
    return {"path": path, "code": textwrap.dedent(code), "first_line": first_line}


def parse_definitions(stdout):
    last = stdout.rstrip("\n").split("\n")[-1]
    assert last.startswith(pipeline.MARKER), stdout
    return json.loads(last[len(pipeline.MARKER) :])


def dataset(defs, name):
    return next(d for d in defs["datasets"] if d["name"] == name)


def flow(defs, name):
    return next(f for f in defs["flows"] if f["name"] == name)


def relation(flow_json):
    from pyspark.sql.connect.proto import Relation

    return Relation.FromString(base64.b64decode(flow_json["query"]["relation"]))


def run_relation(spark, flow_json):
    """Executes a flow's relation as it came out of the analysis."""
    from pyspark.sql.connect.dataframe import DataFrame
    from pyspark.sql.connect.plan import LogicalPlan

    class Given(LogicalPlan):
        def __init__(self, rel):
            super().__init__(None)
            self.rel = rel

        def plan(self, session):
            return self.rel

    return DataFrame(Given(relation(flow_json)), spark).collect()


def named_tables(rel):
    """The table names a relation reads, anywhere in its tree."""
    found = []

    def walk(message):
        for descriptor, value in message.ListFields():
            if descriptor.name == "named_table":
                found.append(value.unparsed_identifier)
            elif descriptor.type == descriptor.TYPE_MESSAGE:
                for item in [value] if hasattr(value, "ListFields") else value:
                    if hasattr(item, "ListFields"):
                        walk(item)

    walk(rel)
    return found


COURSE_EXAMPLE = """\
import dlt
from pyspark.sql.functions import col, avg, count

@dlt.table(comment="Raw customer events from streaming source", table_properties={"quality": "bronze"})
def raw_customer_events():
    return spark.readStream.format("cloudFiles").option("cloudFiles.format", "json").load("/Volumes/main/raw/landing/customer_events/")

@dlt.table(comment="Cleaned customer events with quality checks", table_properties={"quality": "silver"})
@dlt.expect_or_drop("valid_customer_id", "customer_id IS NOT NULL")
@dlt.expect_or_drop("valid_amount", "amount > 0")
def cleaned_customer_events():
    return dlt.read_stream("raw_customer_events").select(col("customer_id"), col("event_type"),
        col("amount").cast("double"), col("event_timestamp").cast("timestamp"))

@dlt.table(comment="Aggregated customer features for ML", table_properties={"quality": "gold"})
def customer_ml_features():
    return dlt.read("cleaned_customer_events").groupBy("customer_id").agg(
        count("*").alias("total_events"), avg("amount").alias("avg_amount"), count("event_type").alias("event_count"))
"""


def test_course_example(spark):
    defs = analyze(spark, COURSE_EXAMPLE)
    assert defs["errors"] == []
    raw = dataset(defs, "raw_customer_events")
    assert raw["kind"] == "streaming_table"
    assert raw["comment"] == "Raw customer events from streaming source"
    assert raw["table_properties"] == {"quality": "bronze"}
    assert raw["location"] == {"path": PATH, "line": 4}
    landing = "/Volumes/main/raw/landing/customer_events/"
    view = pipeline.files_view(landing)
    assert flow(defs, "raw_customer_events")["sources"] == [
        {"path": landing, "format": "json", "options": {"cloudFiles.format": "json"}, "view": view}
    ]
    # Each update points the view at the files not processed yet.
    assert named_tables(relation(flow(defs, "raw_customer_events"))) == [view]

    cleaned = dataset(defs, "cleaned_customer_events")
    assert cleaned["kind"] == "streaming_table"
    assert cleaned["expectations"] == [
        {"name": "valid_customer_id", "condition": "customer_id IS NOT NULL", "action": "drop"},
        {"name": "valid_amount", "condition": "amount > 0", "action": "drop"},
    ]
    cleaned_flow = flow(defs, "cleaned_customer_events")
    assert cleaned_flow["target"] == "cleaned_customer_events"
    assert cleaned_flow["inputs"] == [{"name": "raw_customer_events", "streaming": True}]
    assert named_tables(relation(cleaned_flow)) == ["__tarn_stream__raw_customer_events"]

    features = dataset(defs, "customer_ml_features")
    assert features["kind"] == "materialized_view"
    assert flow(defs, "customer_ml_features")["inputs"] == [{"name": "cleaned_customer_events", "streaming": False}]
    assert relation(flow(defs, "customer_ml_features")).HasField("aggregate")


def test_materialized_view_relation_executes(spark):
    spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], "id INT, name STRING").createOrReplaceTempView("people")
    defs = analyze(
        spark,
        """\
        import dlt

        @dlt.table
        def tall():
            return spark.read.table("people").where("id >= 2").select("name")

        @dlt.materialized_view(name="by_sql")
        def sql_version():
            return spark.sql("SELECT name FROM people WHERE id < 2")
        """,
    )
    assert defs["errors"] == []
    assert dataset(defs, "tall")["kind"] == "materialized_view"
    assert flow(defs, "tall")["inputs"] == []
    assert sorted(r.name for r in run_relation(spark, flow(defs, "tall"))) == ["b", "c"]
    assert relation(flow(defs, "by_sql")).HasField("sql")
    assert [r.name for r in run_relation(spark, flow(defs, "by_sql"))] == ["a"]


def test_sql_stays_lazy_and_names_inputs(spark):
    defs = analyze(
        spark,
        """\
        import dlt

        @dlt.table
        def events():
            return spark.readStream.format("json").load("/Volumes/main/raw/events")

        @dlt.table
        def joined():
            return spark.sql("SELECT * FROM STREAM(LIVE.events) e JOIN LIVE.users u ON e.id = u.id")
        """,
        known=[{"name": "users", "kind": "materialized_view"}],
    )
    assert defs["errors"] == []
    assert dataset(defs, "joined")["kind"] == "streaming_table"
    assert flow(defs, "joined")["inputs"] == [
        {"name": "events", "streaming": True},
        {"name": "users", "streaming": False},
    ]
    assert "LIVE.events" in relation(flow(defs, "joined")).sql.query


def test_views_with_expectations(spark):
    defs = analyze(
        spark,
        """\
        import dlt
        from pyspark.sql.functions import col

        @dlt.expect("has_id", "id IS NOT NULL")
        @dlt.view(comment="orders that parse")
        @dlt.expect_all({"positive": "amount > 0", "small": "amount < 1000"})
        @dlt.expect_or_fail("known_status", col("status").isin("new", "done"))
        def parsed_orders():
            return spark.readStream.format("cloudFiles") \\
                .option("cloudFiles.format", "csv") \\
                .options(header=True, **{"cloudFiles.inferColumnTypes": "true"}) \\
                .schema("id INT, amount DOUBLE, status STRING") \\
                .load("/Volumes/main/raw/orders")

        @dlt.temporary_view
        def batch_view():
            return dlt.read("parsed_orders").where("amount > 10")

        @dlt.table
        def orders():
            return spark.read.table("LIVE.batch_view")

        @dlt.table
        def order_counts():
            return spark.table("lookup").join(dlt.read("orders"), "id")
        """,
        known=[{"name": "lookup", "kind": "view"}],
    )
    assert defs["errors"] == []
    view = dataset(defs, "parsed_orders")
    assert view["kind"] == "view"
    assert view["comment"] == "orders that parse"
    assert view["expectations"] == [
        {"name": "has_id", "condition": "id IS NOT NULL", "action": "warn"},
        {"name": "positive", "condition": "amount > 0", "action": "warn"},
        {"name": "small", "condition": "amount < 1000", "action": "warn"},
        {"name": "known_status", "condition": "(status IN ('new', 'done'))", "action": "fail"},
    ]
    assert dataset(defs, "batch_view")["kind"] == "view"
    files = {
        "path": "/Volumes/main/raw/orders",
        "format": "csv",
        "options": {"cloudFiles.format": "csv", "header": "true", "cloudFiles.inferColumnTypes": "true"},
    }
    orders = flow(defs, "orders")
    files["schema"] = "id INT, amount DOUBLE, status STRING"
    files["view"] = pipeline.files_view(files["path"])
    assert orders["sources"] == [files]
    # A view with expectations is read by name: tarn runs it, checked, in
    # the flow's session (the view without them is inlined).
    assert orders["inputs"] == [{"name": "parsed_orders", "streaming": False}]
    assert dataset(defs, "orders")["kind"] == "streaming_table"
    read = relation(orders)
    assert read.HasField("filter")
    assert named_tables(read) == ["`parsed_orders`"]
    assert named_tables(relation(flow(defs, "parsed_orders"))) == [files["view"]]

    counts = flow(defs, "order_counts")
    assert counts["inputs"] == [{"name": "lookup", "streaming": False}, {"name": "orders", "streaming": False}]
    assert dataset(defs, "order_counts")["kind"] == "materialized_view"


def test_view_read_as_stream_streams_its_inputs(spark):
    defs = analyze(
        spark,
        """\
        import dlt

        @dlt.view
        def recent():
            return dlt.read("history").where("day > '2026-01-01'")

        @dlt.table
        def copied():
            return dlt.read_stream("recent")
        """,
        known=[{"name": "history", "kind": "streaming_table"}],
    )
    assert defs["errors"] == []
    assert flow(defs, "recent")["inputs"] == [{"name": "history", "streaming": False}]
    assert flow(defs, "copied")["inputs"] == [{"name": "history", "streaming": True}]
    assert dataset(defs, "copied")["kind"] == "streaming_table"


def test_append_flows_into_a_streaming_table(spark):
    defs = analyze(
        spark,
        """\
        import dlt

        dlt.create_streaming_table(
            "all_events",
            comment="events from both regions",
            partition_cols=["day"],
            cluster_by=["id"],
            expect_all_or_fail={"has_day": "day IS NOT NULL"},
            expect_all_or_drop={"has_id": "id IS NOT NULL"},
        )

        @dlt.append_flow(target="all_events")
        def from_us():
            return spark.readStream.table("LIVE.us_events")

        @dlt.append_flow(target="all_events", name="backfill", once=True)
        def old_events():
            return spark.read.table("archive.events")
        """,
        known=[{"name": "us_events", "kind": "streaming_table"}],
    )
    assert defs["errors"] == []
    target = dataset(defs, "all_events")
    assert target["kind"] == "streaming_table"
    assert target["partition_cols"] == ["day"]
    assert target["cluster_by"] == ["id"]
    assert target["expectations"] == [
        {"name": "has_id", "condition": "id IS NOT NULL", "action": "drop"},
        {"name": "has_day", "condition": "day IS NOT NULL", "action": "fail"},
    ]
    assert [f["name"] for f in defs["flows"]] == ["from_us", "backfill"]
    us = flow(defs, "from_us")
    assert us["target"] == "all_events"
    assert us["inputs"] == [{"name": "us_events", "streaming": True}]
    assert us["once"] is False
    backfill = flow(defs, "backfill")
    assert backfill["once"] is True
    assert backfill["inputs"] == []
    assert named_tables(relation(backfill)) == ["archive.events"]


def test_apply_changes(spark):
    defs = analyze(
        spark,
        """\
        import dlt
        from pyspark.sql.functions import col, expr, struct

        dlt.create_streaming_table("customers", schema="id INT, name STRING, ts TIMESTAMP")

        @dlt.view
        def changes():
            return spark.readStream.format("cloudFiles").option("cloudFiles.format", "json").load("/Volumes/cdc")

        dlt.apply_changes(
            target="customers",
            source="changes",
            keys=[col("id")],
            sequence_by=struct("ts", "seq"),
            apply_as_deletes=expr("op = 'DELETE'"),
            except_column_list=["op", col("seq")],
            stored_as_scd_type="2",
            track_history_except_column_list=["name"],
        )

        dlt.create_streaming_table("customers_v1")
        dlt.create_auto_cdc_flow(
            target="customers_v1",
            source="raw_changes",
            keys=["id"],
            sequence_by=col("ts"),
            where="id > 0",
            ignore_null_updates=True,
            name="v1_flow",
        )
        """,
        known=[{"name": "raw_changes", "kind": "streaming_table"}],
    )
    assert defs["errors"] == []
    assert dataset(defs, "customers")["schema"] == "id INT, name STRING, ts TIMESTAMP"
    cdc_flow = flow(defs, "customers")
    assert cdc_flow["target"] == "customers"
    assert cdc_flow["cdc"] == {
        "source": "changes",
        "keys": ["id"],
        "sequence_by": "struct(ts, seq)",
        "apply_as_deletes": "op = 'DELETE'",
        "apply_as_truncates": None,
        "column_list": None,
        "except_column_list": ["op", "seq"],
        "stored_as_scd_type": 2,
        "track_history_column_list": None,
        "track_history_except_column_list": ["name"],
        "ignore_null_updates": False,
    }
    assert cdc_flow["sources"][0]["path"] == "/Volumes/cdc"

    v1 = flow(defs, "v1_flow")
    assert v1["target"] == "customers_v1"
    assert v1["inputs"] == [{"name": "raw_changes", "streaming": True}]
    assert v1["cdc"]["sequence_by"] == "ts"
    assert v1["cdc"]["ignore_null_updates"] is True
    assert v1["cdc"]["stored_as_scd_type"] == 1
    assert relation(v1).filter.condition.expression_string.expression == "id > 0"


def test_pyspark_pipelines_definitions(spark):
    defs = analyze(
        spark,
        """\
        from pyspark import pipelines as dp
        from pyspark.pipelines import api
        from pyspark.sql.types import StructType, StructField, IntegerType, StringType

        @dp.table(schema=StructType([StructField("id", IntegerType(), False), StructField("s", StringType())]))
        @dp.expect_or_drop("valid", "id > 0")
        def bronze():
            return spark.readStream.format("parquet").option("mergeSchema", True).load("/Volumes/p")

        @dp.materialized_view(cluster_by=["id"])
        def silver():
            return spark.read.table("bronze").where("id > 1")

        @dp.temporary_view()
        def tmp():
            return dp.read("silver")

        dp.create_streaming_table("sink_target")

        @dp.append_flow(target="sink_target")
        def into_target():
            return dp.read_stream("bronze")

        @api.materialized_view(name="from_oss_api")
        def oss():
            return spark.read.table("tmp")
        """,
    )
    assert defs["errors"] == []
    bronze = dataset(defs, "bronze")
    assert bronze["kind"] == "streaming_table"
    assert bronze["schema"] == "`id` int NOT NULL, `s` string"
    assert bronze["expectations"] == [{"name": "valid", "condition": "id > 0", "action": "drop"}]
    assert flow(defs, "bronze")["sources"] == [
        {"path": "/Volumes/p", "format": "parquet", "options": {"mergeSchema": "true"}, "view": pipeline.files_view("/Volumes/p")}
    ]
    assert dataset(defs, "silver")["kind"] == "materialized_view"
    assert dataset(defs, "silver")["cluster_by"] == ["id"]
    assert flow(defs, "silver")["inputs"] == [{"name": "bronze", "streaming": False}]
    assert dataset(defs, "tmp")["kind"] == "view"
    assert flow(defs, "into_target")["inputs"] == [{"name": "bronze", "streaming": True}]
    oss = dataset(defs, "from_oss_api")
    assert oss["kind"] == "materialized_view"
    assert oss["location"]["line"] == 24
    assert flow(defs, "from_oss_api")["inputs"] == [{"name": "silver", "streaming": False}]


def test_syntax_error_is_reported_and_other_sources_still_run(spark):
    broken = "import dlt\n\n\n\n\n\nx = = 1\n"
    offset = "import dlt\n\n@dlt.table\ndef fine():\n    return spark.range(3)\n\ny = (\n"
    defs = analyze(
        spark,
        (broken, "/Workspace/broken.py"),
        (offset, "/Workspace/nb", 20),
        ("import dlt\n\n@dlt.table\ndef ok():\n    return spark.range(1)\n", "/Workspace/ok.py"),
    )
    first, second = defs["errors"]
    assert first["class"] == "SyntaxError"
    assert first["location"] == {"path": "/Workspace/broken.py", "line": 7}
    assert first["message"]
    assert second["location"]["path"] == "/Workspace/nb"
    assert second["location"]["line"] == 26
    assert [d["name"] for d in defs["datasets"]] == ["ok"]


def test_exception_at_definition_time(spark):
    defs = analyze(
        spark,
        """\
        import dlt

        def helper():
            return {}["missing"]

        @dlt.table(name=helper())
        def t():
            return spark.range(1)
        """,
        ("import dlt\n\n@dlt.table\ndef after():\n    return spark.range(1)\n", "/Workspace/next.py", 3),
    )
    (error,) = defs["errors"]
    assert error["class"] == "KeyError"
    assert error["message"] == "'missing'"
    assert error["location"] == {"path": PATH, "line": 4}
    assert dataset(defs, "after")["location"] == {"path": "/Workspace/next.py", "line": 5}


def test_reading_an_undefined_dataset(spark):
    defs = analyze(
        spark,
        """\
        import dlt

        @dlt.table
        def t():
            return dlt.read("nowhere")

        @dlt.table
        def u():
            return spark.read.table("LIVE.nowhere")

        @dlt.table
        def fine():
            return spark.read.table("some_catalog.some_schema.ordinary")
        """,
    )
    assert [e["location"] for e in defs["errors"]] == [{"path": PATH, "line": 3}, {"path": PATH, "line": 7}]
    assert defs["errors"][0]["message"] == "Failed to read dataset 'nowhere'. Dataset is not defined in the pipeline."
    assert defs["errors"][0]["class"] == "DatasetNotDefined"
    assert "LIVE.nowhere" in defs["errors"][1]["message"]
    assert [f["name"] for f in defs["flows"]] == ["fine"]
    assert {d["name"] for d in defs["datasets"]} == {"t", "u", "fine"}


def test_configuration_is_readable(spark):
    defs = analyze(
        spark,
        """\
        import dlt

        source_path = spark.conf.get("mypipeline.source")

        @dlt.table(comment=spark.conf.get("mypipeline.unset", "fallback"))
        def t():
            return spark.readStream.format("json").load(source_path + "/" + spark.conf.get("mypipeline.sub"))
        """,
        configuration={"mypipeline.source": "/Volumes/main/landing", "mypipeline.sub": "day1"},
    )
    assert defs["errors"] == []
    assert dataset(defs, "t")["comment"] == "fallback"
    assert flow(defs, "t")["sources"][0]["path"] == "/Volumes/main/landing/day1"


def test_view_cycle_and_sink_are_errors(spark):
    defs = analyze(
        spark,
        """\
        import dlt

        @dlt.view
        def a():
            return dlt.read("b")

        @dlt.view
        def b():
            return dlt.read("a")

        dlt.create_sink("kafka_out", "kafka", {"topic": "t"})

        @dlt.append_flow(target="kafka_out")
        def to_kafka():
            return dlt.read_stream("a")
        """,
    )
    sink, cycle = sorted(defs["errors"], key=lambda e: e["class"])
    assert sink["class"] == "NotImplementedError"
    assert "sink" in sink["message"]
    assert sink["location"]["line"] == 13
    assert cycle["class"] == "ViewCycle"
    assert "a -> b -> a" in cycle["message"]
    assert defs["flows"] == []


def test_outside_an_analysis_decorators_return_the_function():
    @dlt.table(comment="x")
    @dlt.expect("e", "true")
    def t():
        return 42

    @dlt.view
    def v():
        return 7

    dlt.create_streaming_table("s")
    dlt.apply_changes(target="s", source="v", keys=["id"], sequence_by="ts")
    assert t() == 42
    assert v() == 7


def test_worker_contract(sail, tmp_path):
    """The command tarn sends, in a real worker context: the printed last
    line carries the definitions; the sources saw the context's dbutils."""
    worker = subprocess.Popen(
        [sys.executable, "-u", str(WORKER_DIR / "kernel.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )

    def request(obj):
        worker.stdin.write(json.dumps(obj) + "\n")
        worker.stdin.flush()
        return json.loads(worker.stdout.readline())

    try:
        assert json.loads(worker.stdout.readline())["ready"] is True
        attach = {"op": "attach", "api_url": "http://127.0.0.1:9", "token": "t", "remote": sail}
        assert request(attach) == {"ok": True}
        code = (
            "import dlt\n"
            "print('user output')\n"
            "@dlt.table(comment=type(dbutils).__name__)\n"
            "def t():\n"
            "    return spark.range(2)\n"
        )
        req = {"catalog": "main", "schema": "default", "configuration": {}, "known_datasets": []}
        req["sources"] = [{"path": "/Workspace/p.py", "code": code, "first_line": 1}]
        command = f"import pipeline as _tarn_pipeline\n_tarn_pipeline.analyze({json.dumps(req)!r})"
        result = request({"op": "execute", "language": "python", "code": command})
        assert result["resultType"] == "text", result
        assert result["data"].startswith("user output\n")
        defs = parse_definitions(result["data"])
        assert defs["errors"] == []
        assert dataset(defs, "t")["comment"] == "DBUtils"
        assert relation(flow(defs, "t")).HasField("range")
    finally:
        worker.stdin.close()
        worker.wait(timeout=30)
