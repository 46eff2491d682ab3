"""Execution contexts through databricks-sdk's `w.command_execution`: Python
and SQL commands in one context on a cluster, serverless contexts, cancel,
timeouts, memory limits and a worker killed from outside."""

import datetime
import os
import signal
import time
import uuid

import pytest
from databricks.sdk.errors import NotFound, NotImplemented as SdkNotImplemented
from databricks.sdk.service.compute import CommandStatus, ContextStatus, Language, ResultType

WAIT = datetime.timedelta(minutes=3)


@pytest.fixture(scope="module")
def cluster(w):
    cluster = w.clusters.create_and_wait(
        cluster_name="contexts", spark_version="16.4.x-scala2.13", node_type_id="local-2c", num_workers=0, timeout=WAIT
    )
    yield cluster
    w.clusters.permanent_delete(cluster.cluster_id)


class Context:
    """One execution context and a helper to run commands in it."""

    def __init__(self, w, cluster_id=None, language=Language.PYTHON):
        self.w = w
        self.cluster_id = cluster_id
        self.id = w.command_execution.create_and_wait(cluster_id=cluster_id, language=language, timeout=WAIT).id

    def run(self, code, language=Language.PYTHON):
        return self.w.command_execution.execute_and_wait(
            cluster_id=self.cluster_id, context_id=self.id, language=language, command=code, timeout=WAIT
        )

    def ok(self, code, language=Language.PYTHON):
        response = self.run(code, language)
        assert response.status == CommandStatus.FINISHED, response
        assert response.results.result_type != ResultType.ERROR, response.results
        return response.results

    def destroy(self):
        self.w.command_execution.destroy(cluster_id=self.cluster_id, context_id=self.id)


@pytest.fixture
def ctx(w, cluster):
    context = Context(w, cluster.cluster_id)
    yield context
    try:
        context.destroy()
    except NotFound:
        pass


def test_three_step_etl_in_one_context(w, ctx):
    table = f"main.default.hourly_{uuid.uuid4().hex[:8]}"
    step1 = ctx.ok(
        """
from pyspark.sql import functions as F
rows = [(i, f"2026-11-0{1 + i % 3} {i % 24:02d}:15:00", float(i)) for i in range(48)]
events = spark.createDataFrame(rows, "id int, ts string, amount double").withColumn("ts", F.to_timestamp("ts"))
events.createOrReplaceTempView("events")
print(events.count())
"""
    )
    assert step1.result_type == ResultType.TEXT and step1.data.strip() == "48"

    step2 = ctx.ok(
        """
hourly = spark.sql(
    "SELECT DATE_TRUNC('HOUR', ts) AS hour, to_date(ts) AS day, COUNT(*) AS n, SUM(amount) AS total "
    "FROM events GROUP BY 1, 2"
)
hourly.createOrReplaceTempView("hourly")
display(hourly.orderBy("hour").limit(5))
"""
    )
    assert step2.result_type == ResultType.TABLE
    assert [c["name"] for c in step2.schema] == ["hour", "day", "n", "total"]
    assert len(step2.data) == 5 and step2.truncated is False

    # The temp view made in Python is there for SQL in the same context.
    counted = ctx.ok("SELECT SUM(n) AS rows FROM hourly", Language.SQL)
    assert counted.result_type == ResultType.TABLE and counted.data == [[48]]

    ctx.ok(f'spark.table("hourly").write.partitionBy("day").mode("overwrite").saveAsTable("{table}")')
    info = w.tables.get(table)
    assert [c.name for c in info.columns] == ["hour", "day", "n", "total"]
    assert ctx.ok(f"SELECT COUNT(*) FROM {table}", Language.SQL).data == [[len(set(
        (i % 3, i % 24) for i in range(48)
    ))]]
    w.tables.delete(table)


def test_table_error_and_text_results(ctx):
    ctx.ok('df = spark.createDataFrame([(1, None, "a"), (2, 5, None), (None, 6, None)], "k int, v int, s string")')
    audit = ctx.ok(
        """
from pyspark.sql import functions as F
display(df.select([F.sum(F.col(c).isNull().cast("int")).alias(c) for c in ["k", "v", "s"]]))
"""
    )
    assert audit.result_type == ResultType.TABLE
    assert [c["name"] for c in audit.schema] == ["k", "v", "s"] and audit.data == [[1, 1, 2]]

    failed = ctx.run("def f():\n    raise ValueError('bad row 7')\nf()")
    assert failed.status == CommandStatus.FINISHED and failed.results.result_type == ResultType.ERROR
    assert failed.results.summary == "ValueError: bad row 7"
    assert "Traceback" in failed.results.cause and "line 2, in f" in failed.results.cause

    many = ctx.ok("display(spark.range(5000))")
    assert many.truncated is True and len(many.data) == 1000 and many.data[-1] == [999]

    text = ctx.ok("print('hello'); x = 40\nx + 2")
    assert text.result_type == ResultType.TEXT and text.data == "hello\n42"
    assert ctx.ok("dbutils.notebook.exit('all done')").data == "all done"
    assert ctx.ok("from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate() is spark").data == "True"

    sql_error = ctx.run("SELECT * FROM main.default.no_such_table", Language.SQL)
    assert sql_error.results.result_type == ResultType.ERROR
    assert sql_error.results.summary.startswith("AnalysisException") and "no_such_table" in sql_error.results.summary


def test_cancel_interrupts_and_the_context_survives(w, ctx):
    ctx.ok("kept = 'still here'")
    command = w.command_execution.execute(
        cluster_id=ctx.cluster_id, context_id=ctx.id, language=Language.PYTHON, command="import time; time.sleep(60)"
    ).response
    time.sleep(0.5)
    started = time.time()
    cancelled = w.command_execution.cancel_and_wait(
        cluster_id=ctx.cluster_id, context_id=ctx.id, command_id=command.id, timeout=WAIT
    )
    assert time.time() - started < 2
    assert cancelled.status == CommandStatus.CANCELLED
    assert ctx.ok("kept").data == "'still here'"


def test_dbutils(w, ctx):
    volume = f"v_{uuid.uuid4().hex[:6]}"
    w.volumes.create("main", "default", volume, volume_type=_managed())
    path = f"/Volumes/main/default/{volume}/notes.txt"
    ctx.ok(f"dbutils.fs.put('{path}', 'written from a context', True)")
    assert ctx.ok(f"dbutils.fs.head('{path}')").data == "'written from a context'"
    listing = ctx.ok(f"[f.name for f in dbutils.fs.ls('/Volumes/main/default/{volume}')]").data
    assert listing == "['notes.txt']"
    assert ctx.ok("dbutils.widgets.text('day', '2026-11-21'); dbutils.widgets.get('day')").data == "'2026-11-21'"
    assert ctx.ok("dbutils.jobs.taskValues.get('ingest', 'rows', debugValue=3)").data == "3"
    # mlflow in a context finds this tarn from its environment, as on Databricks.
    experiment = ctx.ok(
        "import json, os, urllib.request\n"
        "url = os.environ['MLFLOW_TRACKING_URI'] + '/api/2.0/mlflow/experiments/get?experiment_id=0'\n"
        "auth = {'Authorization': 'Bearer ' + os.environ['MLFLOW_TRACKING_TOKEN']}\n"
        "json.load(urllib.request.urlopen(urllib.request.Request(url, headers=auth)))['experiment']['name']"
    )
    assert experiment.data == "'Default'"
    missing = ctx.run("dbutils.fs.ls('dbfs:/no/such/dir')")
    assert missing.results.result_type == ResultType.ERROR and "RESOURCE_DOES_NOT_EXIST" in missing.results.summary


def _managed():
    from databricks.sdk.service.catalog import VolumeType

    return VolumeType.MANAGED


def test_serverless_migration_and_isolation(w, cluster):
    table = f"main.default.migrated_{uuid.uuid4().hex[:8]}"
    with_cluster = Context(w, cluster.cluster_id)
    with_cluster.ok(f"spark.range(3).write.saveAsTable('{table}')")
    with_cluster.destroy()

    migration = Context(w, language=Language.SQL)
    migration.ok(
        f"ALTER TABLE {table} ADD COLUMNS (note STRING COMMENT 'added'); COMMENT ON TABLE {table} IS 'migrated'",
        Language.SQL,
    )
    migration.ok("secret_state = 41")
    migration.destroy()
    info = w.tables.get(table)
    assert info.comment == "migrated" and [c.name for c in info.columns] == ["id", "note"]
    with pytest.raises(NotFound):
        w.command_execution.context_status(cluster_id=None, context_id=migration.id)

    fresh = Context(w)
    missing = fresh.run("secret_state")
    assert missing.results.result_type == ResultType.ERROR and "NameError" in missing.results.summary
    assert fresh.ok(f"spark.table('{table}').count()").data == "3"
    fresh.destroy()
    w.tables.delete(table)


def test_bad_input(w, tarn, cluster, ctx):
    with pytest.raises(NotFound):
        w.command_execution.execute(cluster_id=cluster.cluster_id, context_id="12345", command="1", language=Language.PYTHON)
    with pytest.raises(NotFound):
        w.command_execution.command_status(cluster_id=cluster.cluster_id, context_id=ctx.id, command_id="nope")
    with pytest.raises(SdkNotImplemented):
        w.command_execution.create(cluster_id=cluster.cluster_id, language=Language.SCALA)
    unknown_cluster = tarn.raw("POST", "/api/1.2/contexts/create", json={"clusterId": "0000-000000-nothere", "language": "python"})
    assert unknown_cluster.status_code == 400 and unknown_cluster.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    # 100 MB of output: the command finishes with what fits and says so.
    big = ctx.ok("print('x' * 100_000_000)")
    assert len(big.data) < 2 * 1024 * 1024 and "max output size exceeded" in big.data

    # A worker killed from outside fails its context clearly; the cluster and tarn go on.
    pid = int(ctx.ok("import os; os.getpid()").data)
    os.kill(pid, signal.SIGKILL)
    after = ctx.run("1 + 1")
    assert after.status == CommandStatus.ERROR or after.results.result_type == ResultType.ERROR
    assert "killed" in (after.results.summary or "")
    status = w.command_execution.context_status(cluster_id=cluster.cluster_id, context_id=ctx.id)
    assert status.status == ContextStatus.ERROR
    other = Context(w, cluster.cluster_id)
    assert other.ok("spark.range(4).count()").data == "4"
    other.destroy()
    assert w.clusters.get(cluster.cluster_id).state.value == "RUNNING"


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A tarn with short command timeouts, small serverless memory and a short
    serverless idle limit."""
    from conftest import Tarn

    server = Tarn(
        tmp_path_factory.mktemp("limited"),
        {"TARN_COMMAND_TIMEOUT_SECONDS": "3", "TARN_SERVERLESS_MEMORY_MB": "300", "TARN_SERVERLESS_IDLE_SECONDS": "4"},
    ).start()
    yield server
    server.stop()


def test_timeout_memory_limit_and_idle_serverless(limited):
    w = limited.client()
    ctx = Context(w)
    ctx.ok("before = 1")
    started = time.time()
    never = ctx.run("while True:\n    pass")
    assert time.time() - started < 30
    assert never.results.result_type == ResultType.ERROR
    assert never.results.summary == "Command timed out after 3 seconds and was interrupted"

    hog = ctx.run("hog = [bytearray(10**6) for _ in range(2000)]")
    assert hog.results.result_type == ResultType.ERROR and "MemoryError" in hog.results.summary
    assert "300 MiB" in hog.results.summary
    assert ctx.ok("before + 1").data == "2"

    # Unused past the idle limit, the serverless context goes away.
    wait = time.time() + 20
    while time.time() < wait:
        try:
            w.command_execution.context_status(cluster_id=None, context_id=ctx.id)
        except NotFound:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the idle serverless context was not destroyed")
