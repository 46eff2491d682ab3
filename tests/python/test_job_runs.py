"""Job runs through databricks-sdk's `w.jobs`: the five-task ML job with
real work (Delta tables in, a scikit-learn model out, logged to tarn's
MLflow, registered only past a threshold), retries with both attempts shown,
repair, timeouts, cancel, queueing, run_job_task, outputs and errors."""

import base64
import datetime
import os
import signal
import textwrap
import uuid

import pytest
from databricks.sdk.errors import InvalidParameterValue, ResourceDoesNotExist
from databricks.sdk.service import compute, jobs, workspace

WAIT = datetime.timedelta(minutes=6)
SPARK_VERSION = "16.4.x-scala2.13"


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def put_notebook(w, path, source):
    w.workspace.mkdirs(os.path.dirname(path))
    text = "# Databricks notebook source\n" + textwrap.dedent(source)
    w.workspace.import_(
        path,
        content=base64.b64encode(text.encode()).decode(),
        format=workspace.ImportFormat.SOURCE,
        language=workspace.Language.PYTHON,
        overwrite=True,
    )


def put_file(w, path, source):
    w.workspace.mkdirs(os.path.dirname(path))
    w.workspace.import_(
        path,
        content=base64.b64encode(textwrap.dedent(source).encode()).decode(),
        format=workspace.ImportFormat.AUTO,
        overwrite=True,
    )


def python_task(key, path, parameters=(), depends_on=(), **kw):
    return jobs.Task(
        task_key=key,
        depends_on=[jobs.TaskDependency(task_key=d) for d in depends_on],
        spark_python_task=jobs.SparkPythonTask(python_file=path, parameters=list(parameters)),
        **kw,
    )


def by_key(run):
    out = {}
    for t in run.tasks:
        out.setdefault(t.task_key, []).append(t)
    return out


def test_a_warm_worker_starts_each_task_clean(w):
    """Tasks in a chain on one compute share a warm worker: the next task
    sees none of the last one's globals or temp views; a session the last
    task never used is kept, one it used is replaced."""
    base = f"/Users/admin/{unique('warm')}"
    show = 'print("pid", os.getpid(), "session", spark.client._session_id)'
    put_file(w, f"{base}/t1.py", f"""
        import os
        spark.range(3).createOrReplaceTempView("leftover")
        left_behind = 1
        {show}
    """)
    put_file(w, f"{base}/t2.py", f"""
        import os
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        assert "left_behind" not in globals(), "a global of the last task is visible"
        try:
            spark.table("leftover").count()
            visible = True
        except Exception:
            visible = False
        assert not visible, "the last task's temp view is visible"
        assert spark.range(2).count() == 2
        {show}
    """)
    put_file(w, f"{base}/t3.py", f"""
        import os
        {show}
    """)
    put_file(w, f"{base}/t4.py", f"""
        import os
        assert spark.range(5).count() == 5
        {show}
    """)
    job = w.jobs.create(
        name=unique("warm"),
        tasks=[python_task(f"t{i}", f"{base}/t{i}.py", depends_on=[f"t{i - 1}"] if i > 1 else []) for i in range(1, 5)],
    )
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, [(t.task_key, t.state) for t in run.tasks]
    seen = {}
    for t in run.tasks:
        words = w.jobs.get_run_output(t.run_id).logs.split()
        seen[t.task_key] = (words[words.index("pid") + 1], words[words.index("session") + 1])
    assert len({pid for pid, _ in seen.values()}) == 1, seen
    sessions = [seen[f"t{i}"][1] for i in range(1, 5)]
    assert sessions[1] != sessions[0], "t1 used its session: t2 gets a new one"
    assert sessions[2] != sessions[1], "t2 used its session: t3 gets a new one"
    assert sessions[3] == sessions[2], "t3 never used its session: t4 keeps it"
    w.jobs.delete(job.job_id)


def test_a_python_task_prints_sets_values_and_reads_argv(w, tmp_path):
    base = f"/Users/admin/{unique('jobs')}"
    put_file(w, f"{base}/hello.py", """
        import sys
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        n = spark.range(int(sys.argv[1])).count()
        print("counted", n, "args", sys.argv[1:])
        dbutils.jobs.taskValues.set("n", n)
    """)
    put_notebook(w, f"{base}/show", """
        n = dbutils.jobs.taskValues.get("hello", "n", debugValue=0)
        dbutils.notebook.exit(f"{dbutils.widgets.get('greeting')} {n} {dbutils.widgets.get('who')}")
    """)
    job = w.jobs.create(
        name=unique("hello"),
        parameters=[jobs.JobParameterDefinition(name="who", default="world")],
        tasks=[
            python_task("hello", f"{base}/hello.py", ["7", "{{job.run_id}}"]),
            jobs.Task(
                task_key="show",
                depends_on=[jobs.TaskDependency(task_key="hello")],
                notebook_task=jobs.NotebookTask(notebook_path=f"{base}/show", base_parameters={"greeting": "hi"}),
            ),
        ],
    )
    run = w.jobs.run_now_and_wait(job.job_id, job_parameters={"who": "tarn"}, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    assert run.status.state == jobs.RunLifecycleStateV2State.TERMINATED
    assert run.status.termination_details.code == jobs.TerminationCodeCode.SUCCESS
    tasks = by_key(run)
    hello = w.jobs.get_run_output(tasks["hello"][0].run_id)
    assert f"counted 7 args ['7', '{run.run_id}']" in hello.logs
    show = w.jobs.get_run_output(tasks["show"][0].run_id)
    assert show.notebook_output.result == "hi 7 tarn"
    assert [p.value for p in run.job_parameters] == ["tarn"]
    with pytest.raises(InvalidParameterValue, match="multiple tasks"):
        w.jobs.get_run_output(run.run_id)

    # What the run used: per task and in total on the run (tarn's field), and
    # as rows of the system tables, readable with SQL.
    raw = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": run.run_id})
    used = [t["tarn_usage"] for t in raw["tasks"]]
    assert all(u["cores"] >= 1 and u["core_seconds"] > 0 for u in used)
    assert raw["tarn_usage"]["core_seconds"] == pytest.approx(sum(u["core_seconds"] for u in used))
    assert raw["tarn_usage"]["estimated_cost"] == pytest.approx(raw["tarn_usage"]["core_seconds"] / 3600 * 0.10)
    warehouse_id = next(iter(w.warehouses.list())).id
    usage = w.statement_execution.execute_statement(
        f"SELECT count(*), sum(usage_quantity) FROM system.billing.usage WHERE usage_metadata.job_run_id = '{run.run_id}'",
        warehouse_id=warehouse_id, wait_timeout="50s",
    )
    count, hours = usage.result.data_array[0]
    assert count == "2" and float(hours) == pytest.approx(raw["tarn_usage"]["core_seconds"] / 3600)
    timeline = w.statement_execution.execute_statement(
        f"SELECT result_state, trigger_type, job_parameters['who'] FROM system.lakeflow.job_run_timeline "
        f"WHERE run_id = '{run.run_id}'",
        warehouse_id=warehouse_id, wait_timeout="50s",
    )
    assert timeline.result.data_array == [["SUCCESS", "ONE_TIME", "tarn"]]


DATA_PREP = """
    # Two separable classes, deterministic, as a Delta table.
    import random
    random.seed(7)
    rows = []
    for i in range(400):
        label = i % 2
        x = random.gauss(2.0 if label else -2.0, 1.0)
        y = random.gauss(1.0 if label else -1.0, 1.0)
        rows.append((x, y, label))
    table = dbutils.widgets.get("table")
    spark.createDataFrame(rows, "x double, y double, label int").write.mode("overwrite").saveAsTable(table)
    print("wrote", spark.table(table).count(), "rows to", table)
"""

FEATURE_BUILD = """
    from pyspark.sql import functions as F
    table = dbutils.widgets.get("table")
    features = spark.table(table).withColumn("xy", F.col("x") * F.col("y")).withColumn("x2", F.col("x") * F.col("x"))
    features.write.mode("overwrite").saveAsTable(table + "_features")
"""

TRAIN = """
    import argparse, os
    import mlflow
    import mlflow.sklearn
    from pyspark.sql import SparkSession
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    parser = argparse.ArgumentParser()
    parser.add_argument("--table")
    parser.add_argument("--experiment")
    parser.add_argument("--flaky-marker")
    args = parser.parse_args()
    if not os.path.exists(args.flaky_marker):
        open(args.flaky_marker, "w").close()
        raise RuntimeError("flaky: the first attempt fails")

    spark = SparkSession.builder.getOrCreate()
    pdf = spark.table(args.table + "_features").toPandas()
    X, y = pdf[["x", "y", "xy", "x2"]], pdf["label"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    mlflow.set_experiment(args.experiment)
    with mlflow.start_run() as run:
        model = LogisticRegression().fit(X_train, y_train)
        accuracy = float(model.score(X_test, y_test))
        mlflow.log_metric("accuracy", accuracy)
        info = mlflow.sklearn.log_model(model, name="model", input_example=X_test.head(2))
    dbutils.jobs.taskValues.set("accuracy", accuracy)
    dbutils.jobs.taskValues.set("model_uri", info.model_uri)
    print("accuracy", accuracy)
"""

REGISTER = """
    import mlflow
    uri = dbutils.jobs.taskValues.get("train", "model_uri", debugValue="")
    version = mlflow.register_model(uri, dbutils.widgets.get("model_name"))
    dbutils.notebook.exit(str(version.version))
"""


def ml_job(w, base, table, tmp_path):
    put_notebook(w, f"{base}/data_prep", DATA_PREP)
    put_notebook(w, f"{base}/feature_build", FEATURE_BUILD)
    put_file(w, f"{base}/train.py", TRAIN)
    put_notebook(w, f"{base}/register", REGISTER)
    mlflow_dep = ["mlflow==3.17.2", "scikit-learn"]
    main = jobs.JobCluster(
        job_cluster_key="main",
        new_cluster=compute.ClusterSpec(spark_version=SPARK_VERSION, num_workers=0),
    )
    return dict(
        name=unique("ml"),
        job_clusters=[main],
        environments=[
            jobs.JobEnvironment(environment_key="ml", spec=compute.Environment(client="1", dependencies=mlflow_dep))
        ],
        parameters=[
            jobs.JobParameterDefinition(name="threshold", default="0.8"),
            jobs.JobParameterDefinition(name="table", default=table),
            jobs.JobParameterDefinition(name="model_name", default=unique("iris")),
        ],
        tasks=[
            jobs.Task(task_key="data_prep", job_cluster_key="main",
                      notebook_task=jobs.NotebookTask(notebook_path=f"{base}/data_prep")),
            jobs.Task(task_key="feature_build", job_cluster_key="main",
                      depends_on=[jobs.TaskDependency(task_key="data_prep")],
                      notebook_task=jobs.NotebookTask(notebook_path=f"{base}/feature_build")),
            python_task(
                "train", f"/Workspace{base}/train.py",
                ["--table", "{{job.parameters.table}}", "--experiment", f"{base}/experiment",
                 "--flaky-marker", str(tmp_path / "flaky")],
                depends_on=["feature_build"], environment_key="ml", max_retries=1, min_retry_interval_millis=500,
            ),
            jobs.Task(
                task_key="validate",
                depends_on=[jobs.TaskDependency(task_key="train")],
                condition_task=jobs.ConditionTask(
                    op=jobs.ConditionTaskOp.GREATER_THAN_OR_EQUAL,
                    left="{{tasks.train.values.accuracy}}",
                    right="{{job.parameters.threshold}}",
                ),
            ),
            jobs.Task(
                task_key="register_model", job_cluster_key="main",
                depends_on=[jobs.TaskDependency(task_key="validate", outcome="true")],
                notebook_task=jobs.NotebookTask(notebook_path=f"{base}/register"),
                libraries=[compute.Library(pypi=compute.PythonPyPiLibrary(package=p)) for p in mlflow_dep],
            ),
        ],
    )


def test_the_ml_job_trains_retries_and_registers_past_the_threshold(w, tarn, tmp_path):
    base = f"/Users/admin/{unique('ml')}"
    table = f"main.default.{unique('points')}"
    settings = ml_job(w, base, table, tmp_path)
    job = w.jobs.create(**settings)
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, [(t.task_key, t.state) for t in run.tasks]
    tasks = by_key(run)
    # The flaky first attempt failed, the retry succeeded; both are shown.
    attempts = [(t.attempt_number, t.state.result_state) for t in tasks["train"]]
    assert attempts == [(0, jobs.RunResultState.FAILED), (1, jobs.RunResultState.SUCCESS)]
    first = w.jobs.get_run_output(tasks["train"][0].run_id)
    assert "RuntimeError: flaky: the first attempt fails" in first.error
    assert "Traceback" in first.error_trace
    assert float(w.jobs.get_run_output(tasks["train"][1].run_id).logs.split("accuracy")[1]) >= 0.8
    validate = tasks["validate"][0]
    assert validate.condition_task.outcome == "true"
    version = w.jobs.get_run_output(tasks["register_model"][0].run_id).notebook_output.result
    assert version == "1"
    # The job cluster ran the notebooks and is terminated with the run.
    cluster_id = tasks["data_prep"][0].cluster_instance.cluster_id
    assert tasks["register_model"][0].cluster_instance.cluster_id == cluster_id
    assert w.clusters.get(cluster_id).state == compute.State.TERMINATED
    # Resolved references are shown when asked for.
    resolved = w.jobs.get_run(run.run_id, include_resolved_values=True)
    left = [t for t in resolved.tasks if t.task_key == "validate"][0].resolved_values.condition_task.left
    assert float(left) >= 0.8
    # The model is in tarn's registry, and its metric in tarn's tracking.
    model_name = [p.value for p in run.job_parameters if p.name == "model_name"][0]
    versions = w.api_client.do("GET", "/api/2.0/mlflow/registered-models/get", query={"name": model_name})
    assert versions["registered_model"]["latest_versions"][0]["version"] == "1"
    rows = w.statement_execution.execute_statement(
        f"SELECT count(*) FROM {table}_features", warehouse_id=next(iter(w.warehouses.list())).id, wait_timeout="50s"
    )
    assert rows.result.data_array == [["400"]]

    # Past a threshold it cannot reach, the model is not registered: the
    # condition's false branch excludes the task, and the run still succeeds.
    again = w.jobs.run_now_and_wait(job.job_id, job_parameters={"threshold": "1.01"}, timeout=WAIT)
    assert again.state.result_state == jobs.RunResultState.SUCCESS
    later = by_key(again)
    assert later["validate"][0].condition_task.outcome == "false"
    assert later["register_model"][0].state.result_state == jobs.RunResultState.EXCLUDED
    assert [t.attempt_number for t in later["train"]] == [0], "the marker exists: no retry this time"


def test_repair_reruns_only_what_failed(w, tmp_path):
    base = f"/Users/admin/{unique('repair')}"
    counter, marker = tmp_path / "prepared", tmp_path / "fixed"
    put_file(w, f"{base}/prepare.py", f"""
        with open({str(counter)!r}, "a") as f:
            f.write("ran\\n")
    """)
    put_file(w, f"{base}/check.py", f"""
        import os
        assert os.path.exists({str(marker)!r}), "the input is not fixed yet"
    """)
    put_file(w, f"{base}/report.py", "print('report done')\n")
    job = w.jobs.create(
        name=unique("repair"),
        tasks=[
            python_task("prepare", f"{base}/prepare.py"),
            python_task("check", f"{base}/check.py", depends_on=["prepare"]),
            python_task("report", f"{base}/report.py", depends_on=["check"]),
        ],
    )
    failed = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert failed.state.result_state == jobs.RunResultState.FAILED
    states = {k: v[-1].state.result_state for k, v in by_key(failed).items()}
    assert states == {
        "prepare": jobs.RunResultState.SUCCESS,
        "check": jobs.RunResultState.FAILED,
        "report": jobs.RunResultState.UPSTREAM_FAILED,
    }
    assert failed.status.termination_details.code == jobs.TerminationCodeCode.RUN_EXECUTION_ERROR
    assert "AssertionError: the input is not fixed yet" in w.jobs.get_run_output(by_key(failed)["check"][0].run_id).error

    marker.touch()
    repaired = w.jobs.repair_run_and_wait(failed.run_id, rerun_all_failed_tasks=True, timeout=WAIT)
    assert repaired.state.result_state == jobs.RunResultState.SUCCESS
    assert counter.read_text() == "ran\n", "the task that had succeeded did not run again"
    tasks = by_key(repaired)
    assert len(tasks["prepare"]) == 1 and len(tasks["check"]) == 2 and len(tasks["report"]) == 2
    history = repaired.repair_history
    assert [h.type for h in history] == [jobs.RepairHistoryItemType.ORIGINAL, jobs.RepairHistoryItemType.REPAIR]
    assert history[0].state.result_state == jobs.RunResultState.FAILED
    assert sorted(history[1].task_run_ids) == sorted([tasks["check"][1].run_id, tasks["report"][1].run_id])
    with pytest.raises(InvalidParameterValue, match="latest_repair_id"):
        w.jobs.repair_run(failed.run_id, rerun_tasks=["report"])
    again = w.jobs.repair_run_and_wait(
        failed.run_id, rerun_tasks=["report"], latest_repair_id=history[1].id, timeout=WAIT
    )
    assert again.state.result_state == jobs.RunResultState.SUCCESS and len(by_key(again)["report"]) == 3


def test_timeouts_cancel_and_queueing(w):
    base = f"/Users/admin/{unique('stop')}"
    put_file(w, f"{base}/sleep.py", "import sys, time\ntime.sleep(float(sys.argv[1]))\n")
    slow = w.jobs.create(
        name=unique("slow"),
        tasks=[python_task("nap", f"{base}/sleep.py", ["30"], timeout_seconds=1, max_retries=2)],
    )
    timed_out = w.jobs.run_now_and_wait(slow.job_id, timeout=WAIT)
    assert timed_out.state.result_state == jobs.RunResultState.TIMEDOUT
    # retry_on_timeout is off: one attempt only.
    assert [t.attempt_number for t in timed_out.tasks] == [0]
    assert "timed out after 1 seconds" in timed_out.tasks[0].state.state_message

    queued = w.jobs.create(
        name=unique("queued"), max_concurrent_runs=1, queue=jobs.QueueSettings(enabled=True),
        tasks=[python_task("nap", f"{base}/sleep.py", ["60"])],
    )
    first = w.jobs.run_now(queued.job_id).run_id
    second = w.jobs.run_now(queued.job_id).run_id
    assert w.jobs.get_run(second).state.life_cycle_state == jobs.RunLifeCycleState.QUEUED
    assert w.jobs.get_run(second).status.state == jobs.RunLifecycleStateV2State.QUEUED
    w.jobs.cancel_run_and_wait(first, timeout=WAIT)
    cancelled = w.jobs.get_run(first)
    assert cancelled.state.result_state == jobs.RunResultState.CANCELED
    assert cancelled.status.termination_details.code == jobs.TerminationCodeCode.USER_CANCELED
    # The queued run starts once the slot is free; cancel-all ends it.
    from conftest import wait_for
    wait_for(lambda: w.jobs.get_run(second).state.life_cycle_state == jobs.RunLifeCycleState.RUNNING, timeout=60)
    w.jobs.cancel_all_runs(job_id=queued.job_id)
    ended = w.jobs.wait_get_run_job_terminated_or_skipped(second, timeout=WAIT)
    assert ended.state.result_state == jobs.RunResultState.CANCELED

    skipping = w.jobs.create(
        name=unique("noqueue"), max_concurrent_runs=1, queue=jobs.QueueSettings(enabled=False),
        tasks=[python_task("nap", f"{base}/sleep.py", ["60"])],
    )
    busy = w.jobs.run_now(skipping.job_id).run_id
    skipped = w.jobs.run_now_and_wait(skipping.job_id, timeout=WAIT)
    assert skipped.state.life_cycle_state == jobs.RunLifeCycleState.SKIPPED
    assert skipped.state.result_state == jobs.RunResultState.MAXIMUM_CONCURRENT_RUNS_REACHED
    w.jobs.cancel_run_and_wait(busy, timeout=WAIT)


def test_run_job_sql_submit_list_and_delete(w):
    base = f"/Users/admin/{unique('more')}"
    table = f"main.default.{unique('sqljob')}"
    put_file(w, f"{base}/load.sql", f"""
        -- two statements; a parameter substituted by name
        CREATE TABLE {table} (n INT, who STRING);
        INSERT INTO {table} VALUES (1, '{{{{who}}}}'), (2, '{{{{who}}}}');
    """)
    warehouse_id = next(iter(w.warehouses.list())).id
    child = w.jobs.create(
        name=unique("child"),
        parameters=[jobs.JobParameterDefinition(name="who", default="nobody")],
        tasks=[jobs.Task(task_key="load", sql_task=jobs.SqlTask(
            warehouse_id=warehouse_id,
            file=jobs.SqlTaskFile(path=f"{base}/load.sql"),
            parameters={"who": "{{job.parameters.who}}"},
        ))],
    )
    parent = w.jobs.create(
        name=unique("parent"),
        tasks=[jobs.Task(task_key="call", run_job_task=jobs.RunJobTask(job_id=child.job_id, job_parameters={"who": "parent"}))],
    )
    run = w.jobs.run_now_and_wait(parent.job_id, timeout=WAIT)
    output = w.jobs.get_run_output(run.tasks[0].run_id)
    child_run = w.jobs.get_run(output.run_job_output.run_id)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, w.jobs.get_run_output(child_run.tasks[0].run_id).error
    assert child_run.job_id == child.job_id and child_run.run_type == jobs.RunType.WORKFLOW_RUN
    rows = w.statement_execution.execute_statement(
        f"SELECT who, count(*) FROM {table} GROUP BY who", warehouse_id=warehouse_id, wait_timeout="50s"
    )
    assert rows.result.data_array == [["parent", "2"]]
    # The warehouse's time counts as the SQL task's usage.
    used = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": child_run.run_id})["tasks"][0]["tarn_usage"]
    assert used["product"] == "SQL" and used["core_seconds"] > 0
    billed = w.statement_execution.execute_statement(
        f"SELECT billing_origin_product, sku_name FROM system.billing.usage "
        f"WHERE usage_metadata.job_run_id = '{child_run.run_id}'",
        warehouse_id=warehouse_id, wait_timeout="50s",
    )
    assert billed.result.data_array == [["SQL", "TARN_SQL_COMPUTE"]]

    put_file(w, f"{base}/fail.py", "raise SystemExit(3)\n")
    submitted = w.jobs.submit_and_wait(
        run_name="one-off", tasks=[jobs.SubmitTask(task_key="x", spark_python_task=jobs.SparkPythonTask(python_file=f"{base}/fail.py"))],
        timeout=WAIT,
    )
    assert submitted.run_type == jobs.RunType.SUBMIT_RUN
    assert submitted.state.result_state == jobs.RunResultState.FAILED
    assert w.jobs.get_run_output(submitted.run_id).error == "SystemExit: 3"

    listed = [r.run_id for r in w.jobs.list_runs(job_id=child.job_id, completed_only=True)]
    assert listed == [child_run.run_id]
    w.jobs.delete_run(child_run.run_id)
    assert list(w.jobs.list_runs(job_id=child.job_id)) == []
    with pytest.raises(ResourceDoesNotExist, match=f"Run {child_run.run_id} does not exist"):
        w.jobs.get_run(child_run.run_id)
    with pytest.raises(InvalidParameterValue, match="not defined by the job"):
        w.jobs.run_now(child.job_id, job_parameters={"nope": "1"})


def test_a_run_in_flight_when_tarn_dies_is_resumed_after_a_restart(tmp_home):
    """A tarn killed with -9 mid-task: the next start resumes the run and
    takes over the attempt whose worker still runs (it is not started
    again); cancelling the run then stops that worker."""
    from conftest import Tarn, pid_alive, wait_for

    tarn = Tarn(tmp_home).start()
    try:
        w = tarn.client()
        marker = tmp_home / "worker.pid"
        put_notebook(w, "/Users/admin/crash/sleep",
                     f"import os, time\nopen({str(marker)!r}, 'a').write(f'{{os.getpid()}}\\n')\ntime.sleep(600)\n")
        main = jobs.JobCluster(job_cluster_key="main", new_cluster=compute.ClusterSpec(spark_version=SPARK_VERSION, num_workers=0))
        job = w.jobs.create(
            name="crash",
            job_clusters=[main],
            tasks=[jobs.Task(task_key="sleep", job_cluster_key="main",
                             notebook_task=jobs.NotebookTask(notebook_path="/Users/admin/crash/sleep"))],
        )
        run_id = w.jobs.run_now(job.job_id).run_id
        running = wait_for(
            lambda: (t := w.jobs.get_run(run_id).tasks[0]).state.life_cycle_state == jobs.RunLifeCycleState.RUNNING
            and t.cluster_instance and marker.exists() and t,
            timeout=120,
        )
        cluster = w.clusters.get(running.cluster_instance.cluster_id)
        engine_pid = cluster.spark_context_id
        worker_pid = int(marker.read_text().split()[0])
        assert pid_alive(engine_pid) and pid_alive(worker_pid)
        tarn.stop(signal.SIGKILL)
        tarn = Tarn(tmp_home).start()
        w = tarn.client()
        run = w.jobs.get_run(run_id)
        assert run.state.life_cycle_state == jobs.RunLifeCycleState.RUNNING
        assert [(t.attempt_number, t.state.life_cycle_state) for t in run.tasks] == [(0, jobs.RunLifeCycleState.RUNNING)]
        # The worker runs on, once: the same process, not a new attempt.
        assert pid_alive(worker_pid) and marker.read_text().split() == [str(worker_pid)]
        # The engine of the earlier tarn was stopped when the new one reconciled.
        assert w.clusters.get(cluster.cluster_id).state == compute.State.TERMINATED
        wait_for(lambda: not pid_alive(engine_pid), timeout=30)
        w.jobs.cancel_run(run_id)
        run = wait_for(lambda: (r := w.jobs.get_run(run_id)).state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED and r,
                       timeout=60)
        assert run.state.result_state == jobs.RunResultState.CANCELED
        wait_for(lambda: not pid_alive(worker_pid), timeout=30)
        # The job still runs afterwards.
        assert w.jobs.get(job.job_id).settings.name == "crash"
    finally:
        tarn.stop()


def test_failure_notifications_reach_a_webhook_and_an_smtp_server(tmp_home):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from databricks.sdk.service import settings

    from conftest import Mailbox, Tarn, wait_for

    posts = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((self.headers.get("Authorization"), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()

    smtp = Mailbox()
    mails = smtp.mails
    tarn = Tarn(tmp_home, smtp.env).start()
    try:
        w = tarn.client()
        url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
        dest = w.notification_destinations.create(
            display_name="on-call",
            config=settings.Config(generic_webhook=settings.GenericWebhookConfig(url=url, username="u", password="s3cret")),
        )
        shown = w.notification_destinations.get(dest.id)
        assert shown.destination_type == settings.DestinationType.WEBHOOK
        assert shown.config.generic_webhook.url_set and shown.config.generic_webhook.password_set
        assert shown.config.generic_webhook.url is None and shown.config.generic_webhook.password is None
        assert [d.id for d in w.notification_destinations.list()] == [dest.id]
        slack = w.notification_destinations.create(
            display_name="team-channel", config=settings.Config(slack=settings.SlackConfig(url=url + "/slack")))
        shown = w.notification_destinations.get(slack.id)
        assert shown.destination_type == settings.DestinationType.SLACK
        assert shown.config.slack.url_set and shown.config.slack.url is None

        put_file(w, "/Users/admin/notify/boom.py", "raise ValueError('boom')\n")
        job = w.jobs.create(
            name="notify",
            tasks=[python_task("boom", "/Users/admin/notify/boom.py")],
            email_notifications=jobs.JobEmailNotifications(on_failure=["oncall@example.com"]),
            webhook_notifications=jobs.WebhookNotifications(
                on_failure=[jobs.Webhook(id=dest.id), jobs.Webhook(id=slack.id)]),
        )
        run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
        assert run.state.result_state == jobs.RunResultState.FAILED
        wait_for(lambda: len(posts) >= 2 and mails, timeout=30)
        [text] = [p["text"] for _, p in posts if "text" in p]
        assert f"Run failed: notify, run {run.run_id}" in text and "boom: FAILED" in text
        [(auth, payload)] = [(a, p) for a, p in posts if "event_type" in p]
        assert auth == "Basic " + base64.b64encode(b"u:s3cret").decode()
        assert payload["event_type"] == "jobs.on_failure"
        assert payload["run"]["run_id"] == run.run_id and payload["run"]["state"]["result_state"] == "FAILED"
        assert payload["job"] == {"job_id": job.job_id, "name": "notify"}
        recipients, message = mails[0]
        assert recipients == ["oncall@example.com"]
        assert f"Subject: [tarn] Run failed: notify (run {run.run_id})" in message
        assert "boom: FAILED" in message
        assert "s3cret" not in (tmp_home / "serve.log").read_text()

        # A task's own notifications: start and success of one task to the
        # webhook; a failure mailed once, on the last attempt only.
        posts.clear()
        mails.clear()
        put_file(w, "/Users/admin/notify/fine.py", "print('fine')\n")
        put_file(w, "/Users/admin/notify/slow.py", "import time\ntime.sleep(3)\n")
        overdue = jobs.WebhookNotifications(on_duration_warning_threshold_exceeded=[jobs.Webhook(id=dest.id)])
        over_1s = jobs.JobsHealthRules(rules=[jobs.JobsHealthRule(
            metric=jobs.JobsHealthMetric.RUN_DURATION_SECONDS, op=jobs.JobsHealthOperator.GREATER_THAN, value=1)])
        hooked = jobs.WebhookNotifications(on_start=[jobs.Webhook(id=dest.id)], on_success=[jobs.Webhook(id=dest.id)])
        per_task = w.jobs.create(
            name="per-task",
            tasks=[
                python_task("fine", "/Users/admin/notify/fine.py", webhook_notifications=hooked),
                python_task("slow", "/Users/admin/notify/slow.py", webhook_notifications=overdue, health=over_1s),
                python_task(
                    "boom",
                    "/Users/admin/notify/boom.py",
                    max_retries=1,
                    email_notifications=jobs.TaskEmailNotifications(on_failure=["owner@example.com"]),
                    notification_settings=jobs.TaskNotificationSettings(alert_on_last_attempt=True),
                ),
            ],
        )
        run = w.jobs.run_now_and_wait(per_task.job_id, timeout=WAIT)
        assert run.state.result_state == jobs.RunResultState.FAILED
        wait_for(lambda: len(posts) >= 3 and mails, timeout=30)
        events = sorted((p["event_type"], p["task"]["task_key"], p["run"]["task_key"]) for _, p in posts)
        assert events == [
            ("jobs.on_duration_warning_threshold_exceeded", "slow", "slow"),
            ("jobs.on_start", "fine", "fine"),
            ("jobs.on_success", "fine", "fine"),
        ]
        assert all(p["job"] == {"job_id": per_task.job_id, "name": "per-task"} for _, p in posts)
        last = max((t for t in run.tasks if t.task_key == "boom"), key=lambda t: t.attempt_number)
        assert last.attempt_number == 1
        recipients, message = mails[0]
        assert recipients == ["owner@example.com"]
        assert f"Subject: [tarn] Run failed: per-task / boom (run {last.run_id})" in message
        assert len(mails) == 1, "the first, retried attempt's failure is not mailed"

        # A receiver that is down is retried, logged, and the run is unaffected.
        hook.shutdown()
        hook.server_close()
        again = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
        assert again.state.result_state == jobs.RunResultState.FAILED
        wait_for(lambda: "webhook failed" in (tmp_home / "serve.log").read_text(), timeout=30)
        with pytest.raises(InvalidParameterValue):
            w.notification_destinations.create(display_name="bad", config=settings.Config(
                generic_webhook=settings.GenericWebhookConfig(url="ftp://x")))
    finally:
        tarn.stop()
        smtp.stop()


def test_schedules_and_file_arrival_start_runs_and_pausing_stops_them(w):
    import io
    import time

    from databricks.sdk.service import catalog

    from conftest import wait_for

    base = f"/Users/admin/{unique('sched')}"
    put_file(w, f"{base}/tick.py", "print('tick')\n")
    job = w.jobs.create(
        name=unique("every_second"),
        max_concurrent_runs=5,
        schedule=jobs.CronSchedule(quartz_cron_expression="* * * * * ?", timezone_id="Europe/Oslo"),
        tasks=[python_task("tick", f"{base}/tick.py")],
    )
    runs = lambda: list(w.jobs.list_runs(job_id=job.job_id))  # noqa: E731
    wait_for(lambda: len(runs()) >= 3, timeout=60)
    assert {r.trigger for r in runs()} == {jobs.TriggerType.PERIODIC}
    w.jobs.update(job.job_id, new_settings=jobs.JobSettings(schedule=jobs.CronSchedule(
        quartz_cron_expression="* * * * * ?", timezone_id="Europe/Oslo", pause_status=jobs.PauseStatus.PAUSED)))
    time.sleep(0.5)
    paused_at = len(runs())
    time.sleep(3)
    assert len(runs()) == paused_at, "a paused schedule starts no runs"
    finished = wait_for(lambda: [r for r in runs() if r.state.result_state == jobs.RunResultState.SUCCESS], timeout=60)
    assert "tick" in w.jobs.get_run_output(w.jobs.get_run(finished[0].run_id).tasks[0].run_id).logs
    with pytest.raises(InvalidParameterValue, match="quartz_cron_expression"):
        w.jobs.create(name="bad", schedule=jobs.CronSchedule(quartz_cron_expression="every second", timezone_id="UTC"),
                      tasks=[python_task("tick", f"{base}/tick.py")])

    volume = unique("landing")
    w.volumes.create(catalog_name="main", schema_name="default", name=volume, volume_type=catalog.VolumeType.MANAGED)
    path = f"/Volumes/main/default/{volume}"
    w.files.upload(f"{path}/before.csv", io.BytesIO(b"a\n"))
    arrival = w.jobs.create(
        name=unique("arrival"),
        trigger=jobs.TriggerSettings(file_arrival=jobs.FileArrivalTriggerConfiguration(url=path + "/")),
        tasks=[python_task("tick", f"{base}/tick.py")],
    )
    time.sleep(2.5)
    assert list(w.jobs.list_runs(job_id=arrival.job_id)) == [], "files already there start nothing"
    w.files.upload(f"{path}/new.csv", io.BytesIO(b"b\n"))
    started = wait_for(lambda: list(w.jobs.list_runs(job_id=arrival.job_id)), timeout=30)
    assert started[0].trigger == jobs.TriggerType.FILE_ARRIVAL
    w.jobs.delete(job.job_id)
    w.jobs.delete(arrival.job_id)


def test_a_file_that_lands_while_tarn_is_down_starts_a_run_when_it_is_back(tmp_home):
    import io
    import time

    from databricks.sdk.service import catalog

    from conftest import Tarn, wait_for

    tarn = Tarn(tmp_home).start()
    try:
        w = tarn.client()
        put_file(w, "/Users/admin/landing/tick.py", "print('tick')\n")
        w.volumes.create(catalog_name="main", schema_name="default", name="landing", volume_type=catalog.VolumeType.MANAGED)
        w.files.upload("/Volumes/main/default/landing/before.csv", io.BytesIO(b"a\n"))
        job = w.jobs.create(
            name="arrival",
            trigger=jobs.TriggerSettings(
                file_arrival=jobs.FileArrivalTriggerConfiguration(url="/Volumes/main/default/landing/")),
            tasks=[python_task("tick", "/Users/admin/landing/tick.py")],
        )
        time.sleep(2.5)  # the trigger lists the path (its baseline) once a second
        assert list(w.jobs.list_runs(job_id=job.job_id)) == []
    finally:
        tarn.stop()
    # Another writer puts a file into the volume's storage while tarn is down.
    [before] = [p for p in tmp_home.rglob("before.csv") if p.is_file()]
    (before.parent / "while_down.csv").write_text("b\n")
    tarn = Tarn(tmp_home).start()
    try:
        w = tarn.client()
        started = wait_for(lambda: list(w.jobs.list_runs(job_id=job.job_id)), timeout=30)
        assert [r.trigger for r in started] == [jobs.TriggerType.FILE_ARRIVAL]
        time.sleep(2.5)
        assert len(list(w.jobs.list_runs(job_id=job.job_id))) == 1, "the file starts one run, not one per listing"
    finally:
        tarn.stop()


def test_for_each_runs_the_nested_task_per_input(w):
    base = f"/Users/admin/{unique('each')}"
    put_file(w, f"{base}/list.py", "dbutils.jobs.taskValues.set('cities', ['Oslo', 'Bergen', 'Tromso'])\n")
    put_file(w, f"{base}/visit.py", """
        import sys
        city = sys.argv[1]
        assert city != "Nowhere", "no such city"
        print("visiting", city)
    """)
    nested = jobs.Task(task_key="visit", spark_python_task=jobs.SparkPythonTask(
        python_file=f"{base}/visit.py", parameters=["{{input}}"]))
    job = w.jobs.create(
        name=unique("each"),
        tasks=[
            python_task("list", f"{base}/list.py"),
            jobs.Task(task_key="visit_all", depends_on=[jobs.TaskDependency(task_key="list")],
                      for_each_task=jobs.ForEachTask(inputs="{{tasks.list.values.cities}}", concurrency=2, task=nested)),
        ],
    )
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    visit_all = by_key(run)["visit_all"][0]
    assert visit_all.for_each_task.stats.task_run_stats.succeeded_iterations == 3
    each = w.jobs.get_run(visit_all.run_id)
    logs = sorted(w.jobs.get_run_output(i.run_id).logs.strip() for i in each.iterations)
    assert logs == ["visiting Bergen", "visiting Oslo", "visiting Tromso"]

    failing = w.jobs.submit_and_wait(run_name="each-fails", tasks=[jobs.SubmitTask(
        task_key="visit_all", for_each_task=jobs.ForEachTask(inputs='["Oslo", "Nowhere"]', task=nested))], timeout=WAIT)
    assert failing.state.result_state == jobs.RunResultState.FAILED
    assert "1 of 2 iterations failed" in failing.tasks[0].state.state_message


def test_the_cli_creates_runs_follows_and_shows_logs(w, tarn, tmp_path):
    import json
    import subprocess

    from conftest import tarn_binary

    base = f"/Users/admin/{unique('cli')}"
    put_file(w, f"{base}/greet.py", "import sys\nprint('hello', sys.argv[1])\n")
    put_file(w, f"{base}/fail.py", "raise RuntimeError('nope')\n")
    settings = {
        "name": unique("cli"),
        "parameters": [{"name": "who", "default": "world"}],
        "tasks": [
            {"task_key": "greet", "spark_python_task": {"python_file": f"{base}/greet.py", "parameters": ["{{job.parameters.who}}"]}},
            {"task_key": "after", "depends_on": [{"task_key": "greet"}],
             "spark_python_task": {"python_file": f"{base}/greet.py", "parameters": ["again"]}},
        ],
    }
    (tmp_path / "job.json").write_text(json.dumps(settings))
    env = dict(os.environ, DATABRICKS_HOST=tarn.url, DATABRICKS_TOKEN=tarn.token)
    cli = lambda *args: subprocess.run([tarn_binary(), *args], env=env, capture_output=True, text=True, timeout=300)  # noqa: E731
    created = cli("jobs", "create", "--json", str(tmp_path / "job.json"))
    assert created.returncode == 0, created.stderr
    job_id = json.loads(created.stdout)["job_id"]
    ran = cli("jobs", "run-now", str(job_id), "--param", "who=cli")
    assert ran.returncode == 0, ran.stderr
    assert "greet: TERMINATED SUCCESS" in ran.stdout and "after: TERMINATED SUCCESS" in ran.stdout
    run_id = int(ran.stdout.split()[1])
    logs = cli("runs", "logs", str(run_id))
    assert "hello cli" in logs.stdout and "hello again" in logs.stdout

    settings["tasks"][1]["spark_python_task"]["python_file"] = f"{base}/fail.py"
    (tmp_path / "job.json").write_text(json.dumps(settings))
    failing = json.loads(cli("jobs", "create", "--json", str(tmp_path / "job.json")).stdout)["job_id"]
    failed = cli("jobs", "run-now", str(failing))
    assert failed.returncode == 1 and "after: TERMINATED FAILED" in failed.stdout
    assert "ended TERMINATED FAILED" in failed.stderr
    assert "RuntimeError: nope" in cli("runs", "logs", failed.stdout.split()[1]).stdout


def make_wheel(path, name, version, module_source, entry_points):
    """A minimal pure-Python wheel, written as the format says."""
    import hashlib
    import zipfile

    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": module_source,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tarn-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()),
    }
    record = []
    for file, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{file},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheel = path / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for file, text in files.items():
            z.writestr(file, text)
    return wheel


def test_a_wheel_from_a_volume_runs_by_its_entry_point(w, tmp_path):
    import io

    from databricks.sdk.service import catalog

    source = textwrap.dedent("""
        import sys
        def main():
            print("scored", sys.argv[1:])
        def direct():
            print("direct call")
    """)
    wheel = make_wheel(tmp_path, "scorer", "0.1", source, {"score": "scorer:main"})
    volume = unique("wheels")
    w.volumes.create(catalog_name="main", schema_name="default", name=volume, volume_type=catalog.VolumeType.MANAGED)
    remote = f"/Volumes/main/default/{volume}/{wheel.name}"
    w.files.upload(remote, io.BytesIO(wheel.read_bytes()))
    job = w.jobs.create(
        name=unique("wheel"),
        tasks=[
            jobs.Task(task_key="score", libraries=[compute.Library(whl=remote)],
                      python_wheel_task=jobs.PythonWheelTask(package_name="scorer", entry_point="score",
                                                             named_parameters={"table": "t", "limit": "3"})),
            jobs.Task(task_key="direct", libraries=[compute.Library(whl=remote)],
                      python_wheel_task=jobs.PythonWheelTask(package_name="scorer", entry_point="direct")),
        ],
    )
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, [t.state for t in run.tasks]
    tasks = by_key(run)
    assert "scored ['--limit=3', '--table=t']" in w.jobs.get_run_output(tasks["score"][0].run_id).logs
    assert "direct call" in w.jobs.get_run_output(tasks["direct"][0].run_id).logs
