"""Clusters on the `spark` backend: an Apache Spark Connect server that tarn
starts with `spark-submit`, single-node (`local[n]`) or against a Spark
standalone master with two workers started here on loopback, driven through
databricks-sdk (clusters, contexts, jobs) and PySpark's Spark Connect client."""

import base64
import datetime
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import requests
from databricks import sql
from databricks.sdk.service import jobs, workspace
from databricks.sdk.service.compute import AutoScale, ClusterSpec, CommandStatus, EventType, Language, ResultType, State

from conftest import CACHE, free_port, own_server, wait_for

SPARK_VERSION = "16.4.x-scala2.13"
# The first cluster builds tarn's Spark distribution (a pip install of pyspark).
WAIT = datetime.timedelta(minutes=10)
DISTRIBUTION = "pyspark==4.2.0"


def spark_home() -> Path:
    """A Spark distribution for the standalone master and workers, in a venv
    of the test cache (built once)."""
    venv = CACHE / "venvs" / "spark-dist-4.2.0"
    if not (venv / ".ready").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        uv = Path(sys.executable).parent / "uv"
        if uv.exists():
            subprocess.run([str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), DISTRIBUTION],
                           check=True)
        else:
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", DISTRIBUTION], check=True)
        (venv / ".ready").touch()
    return next((venv / "lib").glob("python*/site-packages/pyspark"))


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """A Spark standalone master and two one-core workers on loopback."""
    home = spark_home()
    work = tmp_path_factory.mktemp("spark-standalone")
    port, ui = free_port(), free_port()
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOG_DIR=str(work), SPARK_WORKER_DIR=str(work / "work"))
    spark_class = str(home / "bin" / "spark-class")
    log = open(work / "standalone.log", "ab")
    master_url = f"spark://127.0.0.1:{port}"
    procs = [subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)], env=env, stdout=log, stderr=log)]
    for _ in range(2):
        procs.append(subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                       "--cores", "1", "--memory", "2g", "--webui-port", "0", master_url],
                                      env=env, stdout=log, stderr=log))
    state = f"http://127.0.0.1:{ui}/json/"

    def alive_workers():
        try:
            return len([x for x in requests.get(state, timeout=5).json()["workers"] if x["state"] == "ALIVE"]) == 2
        except (requests.RequestException, ValueError, KeyError):
            return False

    try:
        wait_for(alive_workers, timeout=120, interval=0.5)
        yield {"master": master_url, "state": state}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def server(standalone):
    yield from own_server("tarn-spark-", {"TARN_SPARK_MASTER": standalone["master"]})


@pytest.fixture(scope="module")
def w(server):
    return server.client()


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def run_ok(w, cluster_id, context_id, code, language=Language.PYTHON):
    response = w.command_execution.execute_and_wait(
        cluster_id=cluster_id, context_id=context_id, language=language, command=code, timeout=WAIT
    )
    assert response.status == CommandStatus.FINISHED, response
    assert response.results.result_type != ResultType.ERROR, response.results
    return response.results


def test_a_single_node_spark_cluster_runs_commands_and_keeps_its_tables(server, w):
    cluster = w.clusters.create_and_wait(cluster_name="spark-single", spark_version=SPARK_VERSION, num_workers=0,
                                         custom_tags={"tarn_backend": "spark"}, timeout=WAIT)
    try:
        assert cluster.state == State.RUNNING
        log = server.home / "logs" / "clusters" / cluster.cluster_id / "engine.log"
        assert "Spark Connect server started" in log.read_text()
        ctx = w.command_execution.create_and_wait(cluster_id=cluster.cluster_id, language=Language.PYTHON,
                                                   timeout=WAIT).id
        assert run_ok(w, cluster.cluster_id, ctx, "print(spark.version)").data.strip() == "4.2.0"
        # No workers: a single node, whatever TARN_SPARK_MASTER says.
        master = run_ok(w, cluster.cluster_id, ctx, "print(spark.conf.get('spark.master'))").data.strip()
        assert master.startswith("local["), master
        for statement in [
            "CREATE TABLE sales (id INT, region STRING, amount DOUBLE) USING parquet",
            "INSERT INTO sales VALUES (1, 'north', 10.5), (2, 'south', 20.0), (3, 'north', 4.5)",
        ]:
            run_ok(w, cluster.cluster_id, ctx, statement, Language.SQL)
        totals = run_ok(w, cluster.cluster_id, ctx,
                        "SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region", Language.SQL)
        assert totals.data == [["north", 15.0], ["south", 20.0]]
        # Spark's own writer, not rewritten: saveAsTable in Spark's default (Parquet) format.
        run_ok(w, cluster.cluster_id, ctx, "spark.range(7).write.saveAsTable('seven')")
        described = run_ok(w, cluster.cluster_id, ctx, "DESCRIBE TABLE EXTENDED seven", Language.SQL)
        assert ["Provider", "parquet", ""] in described.data

        # The same tables through the cluster's SQL endpoint (databricks-sql-connector, Thrift).
        path = f"/sql/protocolv1/o/0/{cluster.cluster_id}"
        with sql.connect(server_hostname="127.0.0.1", http_path=path, access_token=server.token,
                         _connection_uri=server.url + path, _retry_stop_after_attempts_count=2) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) AS n, max(amount) AS top FROM sales WHERE region = :region",
                            {"region": "north"})
                assert tuple(cur.fetchone()) == (2, 10.5)
                cur.execute("CREATE TABLE returns USING parquet AS SELECT id, amount FROM sales WHERE id > 1")
                cur.execute("SELECT sum(amount) FROM returns")
                assert cur.fetchone()[0] == 24.5

        # The tables are the cluster's: its metastore outlives a restart.
        restarted = w.clusters.restart(cluster.cluster_id).result(timeout=WAIT)
        assert restarted.spark_context_id != cluster.spark_context_id
        session = server.spark(restarted)
        assert session.table("sales").count() == 3
        assert session.table("seven").count() == 7
        assert session.table("returns").count() == 2

        # The JVM dying is the cluster's engine dying, reported as such.
        jvm = subprocess.run(["pgrep", "-P", str(restarted.spark_context_id)], capture_output=True, text=True)
        os.kill(int(jvm.stdout.split()[0]), signal.SIGKILL)
        wait_for(lambda: w.clusters.get(cluster.cluster_id).state == State.TERMINATED, timeout=60, interval=0.5)
        reason = w.clusters.get(cluster.cluster_id).termination_reason
        assert reason.code.value == "DRIVER_UNEXPECTED_FAILURE", reason
    finally:
        w.clusters.permanent_delete(cluster.cluster_id)


def put_file(w, path, source):
    w.workspace.mkdirs(os.path.dirname(path))
    w.workspace.import_(path, content=base64.b64encode(textwrap.dedent(source).encode()).decode(),
                        format=workspace.ImportFormat.AUTO, overwrite=True)


def test_a_cluster_with_workers_runs_a_job_on_the_standalone_master(server, w, standalone):
    cluster = w.clusters.create_and_wait(
        cluster_name=unique("spark-two"), spark_version=SPARK_VERSION, num_workers=2, node_type_id="local-1c",
        custom_tags={"tarn_backend": "spark"}, spark_conf={"spark.executor.memory": "1g"}, timeout=WAIT,
    )
    try:
        apps = requests.get(standalone["state"], timeout=5).json()["activeapps"]
        app = next(a for a in apps if a["name"] == f"tarn {cluster.cluster_name}")
        assert app["cores"] == 2, app

        base = f"/Users/admin/{unique('spark')}"
        put_file(w, f"{base}/write.py", """
            from pyspark.sql import functions as F
            df = spark.range(100_000).withColumn("k", F.col("id") % 10)
            df.write.mode("overwrite").format("parquet").saveAsTable("facts")
            print("wrote", spark.table("facts").count())
        """)
        put_file(w, f"{base}/check.py", """
            rows = spark.sql("SELECT k, count(*) AS c FROM facts GROUP BY k ORDER BY k").collect()
            assert [r.c for r in rows] == [10_000] * 10, rows
            print("groups", len(rows))
        """)
        job = w.jobs.create(name=unique("on-spark"), tasks=[
            jobs.Task(task_key="write", existing_cluster_id=cluster.cluster_id,
                      spark_python_task=jobs.SparkPythonTask(python_file=f"{base}/write.py")),
            jobs.Task(task_key="check", existing_cluster_id=cluster.cluster_id,
                      depends_on=[jobs.TaskDependency(task_key="write")],
                      spark_python_task=jobs.SparkPythonTask(python_file=f"{base}/check.py")),
        ])
        run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
        assert run.state.result_state == jobs.RunResultState.SUCCESS, [(t.task_key, t.state) for t in run.tasks]
        logs = {t.task_key: w.jobs.get_run_output(t.run_id).logs for t in run.tasks}
        assert "wrote 100000" in logs["write"] and "groups 10" in logs["check"]

        # The executors that did the work ran on the standalone workers.
        done = requests.get(standalone["state"], timeout=5).json()
        app = next(a for a in done["activeapps"] if a["name"] == f"tarn {cluster.cluster_name}")
        assert app["cores"] == 2 and app["state"] == "RUNNING"
        assert all(worker["coresused"] == 1 for worker in done["workers"]), done["workers"]
    finally:
        w.clusters.permanent_delete(cluster.cluster_id)
    finished = lambda: any(a["name"] == f"tarn {cluster.cluster_name}"  # noqa: E731
                           for a in requests.get(standalone["state"], timeout=5).json()["completedapps"])
    wait_for(finished, timeout=60, interval=0.5)


def test_an_autoscaling_cluster_grows_with_pending_tasks_and_shrinks_when_idle(server, w, standalone):
    """`autoscale` on the spark backend is Spark's dynamic allocation between
    the bounds; tarn records the changes as Databricks' autoscaling events."""
    cluster = w.clusters.create_and_wait(
        cluster_name=unique("spark-scaling"), spark_version=SPARK_VERSION, node_type_id="local-1c",
        autoscale=AutoScale(min_workers=1, max_workers=2), custom_tags={"tarn_backend": "spark"},
        spark_conf={"spark.executor.memory": "1g", "spark.dynamicAllocation.executorIdleTimeout": "3s",
                    "spark.dynamicAllocation.shuffleTracking.timeout": "3s",
                    "spark.dynamicAllocation.schedulerBacklogTimeout": "1s"},
        timeout=WAIT,
    )
    try:
        session = server.spark(cluster)
        # Many tasks pending on one executor: the allocation manager asks for the second.
        total = session.range(0, 1_500_000_000, 1, 96).selectExpr("sum(hash(id)) AS s").first().s
        assert total is not None
        ups = wait_for(lambda: list(w.clusters.events(cluster.cluster_id, event_types=[EventType.UPSIZE_COMPLETED])),
                       timeout=60, interval=1)
        assert ups[0].details.current_num_workers == 2 and ups[0].details.cause.value == "AUTOSCALE", ups[0]
        # Idle past the timeout: back to the minimum.
        down = lambda: [e for e in w.clusters.events(cluster.cluster_id, event_types=[EventType.RESIZING])  # noqa: E731
                        if e.details.current_num_workers == 1]
        assert wait_for(down, timeout=90, interval=1)
    finally:
        w.clusters.permanent_delete(cluster.cluster_id)


@pytest.fixture(scope="module")
def outside_server(tmp_path_factory):
    """A Spark Connect server tarn did not start (its own JVM, local[1])."""
    home = spark_home()
    work = tmp_path_factory.mktemp("spark-outside")
    port = free_port()
    env = dict(os.environ, SPARK_HOME=str(home))
    log = open(work / "server.log", "ab")
    proc = subprocess.Popen(
        [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
         "--master", "local[1]", "--name", "outside", "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
         "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.ui.enabled=false",
         "--conf", f"spark.sql.warehouse.dir={work / 'warehouse'}", "spark-internal"],
        env=env, stdout=log, stderr=log, cwd=work, start_new_session=True)
    try:
        wait_for(lambda: "Spark Connect server started" in (work / "server.log").read_text(), timeout=120, interval=0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_cluster_routes_to_a_spark_connect_server_it_did_not_start(server, w, outside_server):
    from databricks.sdk import errors
    from pyspark.sql import SparkSession

    with pytest.raises(errors.InvalidParameterValue, match="tarn_spark_connect_url"):
        w.clusters.create(cluster_name="bad", spark_version=SPARK_VERSION, num_workers=0,
                          custom_tags={"tarn_backend": "spark", "tarn_spark_connect_url": "http://x:1"})
    with pytest.raises(errors.InvalidParameterValue, match="needs tarn_backend spark"):
        w.clusters.create(cluster_name="bad", spark_version=SPARK_VERSION, num_workers=0,
                          custom_tags={"tarn_spark_connect_url": outside_server})
    cluster = w.clusters.create_and_wait(
        cluster_name="routed", spark_version=SPARK_VERSION, num_workers=0, timeout=WAIT,
        custom_tags={"tarn_backend": "spark", "tarn_spark_connect_url": outside_server},
    )
    try:
        session = server.spark(cluster)
        assert session.conf.get("spark.app.name") == "outside"
        session.range(4).write.saveAsTable("routed_table")
        ctx = w.command_execution.create_and_wait(cluster_id=cluster.cluster_id, language=Language.PYTHON,
                                                   timeout=WAIT).id
        assert run_ok(w, cluster.cluster_id, ctx, "print(spark.table('routed_table').count())").data.strip() == "4"
    finally:
        w.clusters.permanent_delete(cluster.cluster_id)
    # Terminating the cluster stops tarn's route, not the server.
    direct = SparkSession.builder.remote(outside_server).create()
    try:
        assert direct.table("routed_table").count() == 4
    finally:
        direct.stop()


def test_a_job_cluster_on_the_spark_backend(server, w):
    """A job's own cluster (`new_cluster`) with the tag: started for the run
    on Spark, gone after it."""
    base = f"/Users/admin/{unique('jobcluster')}"
    put_file(w, f"{base}/task.py", """
        print("version", spark.version)
        print("rows", spark.range(1000).selectExpr("sum(id) AS s").first().s)
    """)
    spec = jobs.JobCluster(job_cluster_key="spark", new_cluster=ClusterSpec(
        spark_version=SPARK_VERSION, num_workers=0, custom_tags={"tarn_backend": "spark"}))
    job = w.jobs.create(name=unique("job-cluster"), job_clusters=[spec], tasks=[
        jobs.Task(task_key="only", job_cluster_key="spark",
                  spark_python_task=jobs.SparkPythonTask(python_file=f"{base}/task.py")),
    ])
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, [(t.task_key, t.state) for t in run.tasks]
    logs = w.jobs.get_run_output(run.tasks[0].run_id).logs
    assert "version 4.2.0" in logs and "rows 499500" in logs, logs
