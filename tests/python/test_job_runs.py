"""Job runs through databricks-sdk's `w.jobs`: the five-task ML job with
real work (Delta tables in, a scikit-learn model out, logged to tarn's
MLflow, registered only past a threshold), retries with both attempts shown,
repair, timeouts, cancel, queueing, run_job_task, outputs and errors."""

import base64
import datetime
import os
import textwrap
import uuid

import pytest
from databricks.sdk.errors import InvalidParameterValue
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
