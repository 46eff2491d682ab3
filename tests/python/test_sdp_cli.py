"""Spark Declarative Pipelines' own CLI (`python -m pyspark.pipelines.cli`,
pyspark-client 4.2.0) pointed at tarn's Spark Connect gateway: a
`spark-pipeline.yml` project of Python and SQL definitions runs as an update
of a tarn pipeline, its datasets become Delta tables in tarn's catalog, and
the run's events are what the CLI prints."""

import datetime
import json
import os
import subprocess
import sys
import textwrap

import pytest
from databricks.sdk import errors

WAIT = datetime.timedelta(minutes=3)


@pytest.fixture(scope="module")
def cluster(w):
    cluster = w.clusters.create_and_wait(
        cluster_name="sdp", spark_version="16.4.x-scala2.13", node_type_id="local-2c", num_workers=0, timeout=WAIT
    )
    yield cluster
    w.clusters.permanent_delete(cluster.cluster_id)


@pytest.fixture(scope="module")
def remote(tarn, cluster):
    return cluster.default_tags["SparkConnectUrl"] + f";token={tarn.token}"


@pytest.fixture(scope="module")
def spark(tarn, cluster):
    return tarn.spark(cluster)


def schema(w, name):
    w.schemas.create(name=name, catalog_name="main")
    return name


def project(root, schema_name, files):
    """A pipeline project: the spec and its `transformations/` files."""
    (root / "transformations").mkdir(parents=True)
    spec = {
        "name": root.name,
        "storage": str(root / "storage"),
        "catalog": "main",
        "database": schema_name,
        "libraries": [{"glob": {"include": "transformations/**"}}],
    }
    # JSON is YAML; the CLI reads it with yaml.safe_load.
    (root / "spark-pipeline.yml").write_text(json.dumps(spec))
    for name, text in files.items():
        (root / "transformations" / name).write_text(textwrap.dedent(text))
    return root


def cli(root, remote, *args):
    """Runs the SDP CLI in the project; its exit code and all it printed."""
    env = dict(os.environ, SPARK_REMOTE=remote)
    done = subprocess.run(
        [sys.executable, "-m", "pyspark.pipelines.cli", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def rows(spark, query):
    return [tuple(r) for r in spark.sql(query).collect()]


ORDERS = """\
from pyspark import pipelines as dp
from pyspark.sql.functions import col

LANDING = {landing!r}

@dp.table(comment="Orders as they land")
def raw_orders():
    return spark.readStream.format("json").schema("id INT, amount INT").load(LANDING)

@dp.temporary_view
def positive():
    return spark.read.table("raw_orders").where(col("amount") > 0)

@dp.materialized_view
def positive_orders():
    return spark.read.table("positive").select("id", "amount")

@dp.table
def doubled():
    return spark.readStream.table("raw_orders").select("id", (col("amount") * 2).alias("doubled"))

@dp.materialized_view
def big_orders():
    return spark.sql("SELECT id FROM positive_orders WHERE amount >= 10")
"""

TOTALS = """\
CREATE MATERIALIZED VIEW totals COMMENT 'from SQL' AS
SELECT count(*) AS n, sum(doubled) AS total FROM doubled;
"""


def land(landing, name, orders):
    landing.mkdir(exist_ok=True)
    (landing / name).write_text("\n".join(json.dumps(o) for o in orders))


def test_run_builds_python_and_sql_datasets_and_a_second_run_reads_only_new_files(tmp_path, w, remote, spark):
    s = schema(w, "sdp_orders")
    landing = tmp_path / "landing"
    land(landing, "1.json", [{"id": 1, "amount": 10}, {"id": 2, "amount": -4}])
    root = project(tmp_path / "orders", s, {"orders.py": ORDERS.format(landing=str(landing)), "totals.sql": TOTALS})

    code, out = cli(root, remote, "run")
    assert code == 0, out
    for line in [
        "Flow 'raw_orders' has COMPLETED (2 rows written).",
        "Flow 'positive_orders' has COMPLETED (1 rows written).",
        "Flow 'doubled' has COMPLETED (2 rows written).",
        "Flow 'totals' writes to 'main.sdp_orders.totals', reading main.sdp_orders.doubled.",
        "Run is COMPLETED.",
    ]:
        assert line in out, out
    assert rows(spark, f"SELECT id, amount FROM main.{s}.positive_orders") == [(1, 10)]
    assert rows(spark, f"SELECT id FROM main.{s}.big_orders") == [(1,)]
    assert rows(spark, f"SELECT n, total FROM main.{s}.totals") == [(2, 12)]
    assert w.tables.get(f"main.{s}.doubled").table_type.value == "STREAMING_TABLE"
    totals = w.tables.get(f"main.{s}.totals")
    assert (totals.table_type.value, totals.comment) == ("MATERIALIZED_VIEW", "from SQL")
    with pytest.raises(errors.NotFound):
        w.tables.get(f"main.{s}.positive")

    land(landing, "2.json", [{"id": 3, "amount": 30}])
    code, out = cli(root, remote, "run")
    assert code == 0, out
    assert "Flow 'raw_orders' has COMPLETED (1 rows written)." in out, out
    assert "Flow 'doubled' has COMPLETED (1 rows written)." in out, out
    assert sorted(rows(spark, f"SELECT id, doubled FROM main.{s}.doubled")) == [(1, 20), (2, -8), (3, 60)]
    assert sorted(rows(spark, f"SELECT id FROM main.{s}.big_orders")) == [(1,), (3,)]
    assert rows(spark, f"SELECT n, total FROM main.{s}.totals") == [(3, 72)]

    # The runs are updates of the project's pipeline, named after its storage.
    (pipeline,) = [p for p in w.pipelines.list_pipelines() if p.name == str(root / "storage")]
    updates = w.pipelines.list_updates(pipeline.pipeline_id).updates
    assert [u.state.value for u in updates] == ["COMPLETED", "COMPLETED"]
    events = list(w.pipelines.list_pipeline_events(pipeline.pipeline_id))
    assert any(e.event_type == "flow_progress" and e.origin.flow_name == "totals" for e in events)

    code, out = cli(root, remote, "run", "--full-refresh", "doubled")
    assert code == 0, out
    assert "Flow 'doubled' has COMPLETED (3 rows written)." in out, out
    assert "Flow 'raw_orders' is EXCLUDED." in out, out
    assert rows(spark, f"SELECT count(*) FROM main.{s}.doubled") == [(3,)]


def test_dry_run_checks_the_graph_and_writes_nothing(tmp_path, w, remote):
    s = schema(w, "sdp_dry")
    landing = tmp_path / "landing"
    land(landing, "1.json", [{"id": 1, "amount": 10}])
    root = project(tmp_path / "dry", s, {"orders.py": ORDERS.format(landing=str(landing)), "totals.sql": TOTALS})
    code, out = cli(root, remote, "dry-run")
    assert code == 0, out
    assert "Flow 'doubled' writes to 'main.sdp_dry.doubled', reading main.sdp_dry.raw_orders." in out, out
    assert "Run is COMPLETED." in out and "has COMPLETED" not in out, out
    with pytest.raises(errors.NotFound):
        w.tables.get(f"main.{s}.raw_orders")

    (root / "transformations" / "late.py").write_text(
        "from pyspark import pipelines as dp\n\n@dp.table\ndef late():\n    return spark.readStream.table('missing')\n"
    )
    code, out = cli(root, remote, "dry-run")
    assert code != 0, out
    assert "Flow 'late': it streams from 'missing', which is not a dataset of this pipeline" in out, out
    assert "late.py:" in out, out


def test_broken_definitions_and_failing_flows_reach_the_cli(tmp_path, w, remote):
    s = schema(w, "sdp_broken")
    root = project(tmp_path / "broken", s, {"bad.sql": "CREATE MATERIALIZED VEW oops AS SELECT 1;\n"})
    code, out = cli(root, remote, "run")
    assert code != 0, out
    assert "ParseException" in out and "bad.sql:1" in out, out

    root = project(
        tmp_path / "failing",
        s,
        {"fails.sql": "CREATE MATERIALIZED VIEW base AS SELECT 1 AS a;\nCREATE MATERIALIZED VIEW wrong AS SELECT nope FROM base;\n"},
    )
    code, out = cli(root, remote, "run")
    assert code != 0, out
    assert "Flow 'base' has COMPLETED (1 rows written)." in out, out
    assert "Flow 'wrong' has FAILED" in out and "Run is FAILED." in out, out
    assert "nope" in out.split("Traceback")[-1], out

    root = project(tmp_path / "sink", s, {"sink.py": "from pyspark import pipelines as dp\ndp.create_sink('out', 'console', {})\n"})
    code, out = cli(root, remote, "run")
    assert code != 0, out
    assert "UnsupportedOperationException: Sink 'out'" in out, out
