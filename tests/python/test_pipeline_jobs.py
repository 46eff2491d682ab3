"""Pipelines run by jobs (`pipeline_task`) through databricks-sdk, and the
`tarn pipelines` command line against a running tarn: an Auto Loader
bronze table and a silver table with a DROP expectation, their rows
checked against hand-computed ones; a full refresh; a broken source; a
busy pipeline; a cancelled run stopping its update."""

import datetime
import io
import json
import os
import subprocess
import uuid

import pytest
from databricks.sdk import errors
from databricks.sdk.service import jobs
from databricks.sdk.service.catalog import VolumeType
from databricks.sdk.service.pipelines import FileLibrary, PipelineLibrary
from databricks.sdk.service.workspace import ImportFormat

from conftest import tarn_binary, wait_for
from test_pipelines import lines, sql_rows

WAIT = datetime.timedelta(minutes=6)
SCHEMA = "pjobs"
LANDING = f"/Volumes/main/{SCHEMA}/landing/orders"
CLI_LANDING = f"/Volumes/main/{SCHEMA}/landing/cli"


def source(prefix, landing):
    """Bronze `<prefix>_raw` from the JSON files under `landing`; `<prefix>`
    its rows with a positive amount."""
    return f'''import dlt
from pyspark.sql.functions import col

@dlt.table
def {prefix}_raw():
    return spark.readStream.format("cloudFiles").option("cloudFiles.format", "json").load("{landing}/")

@dlt.table
@dlt.expect_or_drop("positive", "amount > 0")
def {prefix}():
    return dlt.read("{prefix}_raw").select(col("id"), col("amount").cast("int").alias("amount"))
'''


BROKEN = "import dlt\n\n@dlt.table\ndef orders(:\n    pass\n"

# File one: three orders, one of them not positive. File two: two orders.
ONE = [{"id": "a", "amount": "10"}, {"id": "b", "amount": "-3"}, {"id": "c", "amount": "7"}]
TWO = [{"id": "d", "amount": "4"}, {"id": "e", "amount": "0"}]


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def put_source(w, name, text):
    me = w.current_user.me().user_name
    path = f"/Users/{me}/pipeline_jobs/{name}.py"
    w.workspace.mkdirs(os.path.dirname(path))
    w.workspace.upload(path, io.BytesIO(text.encode()), format=ImportFormat.RAW, overwrite=True)
    return path


def make_pipeline(w, name, text):
    libraries = [PipelineLibrary(file=FileLibrary(path=put_source(w, name, text)))]
    return w.pipelines.create(name=unique(name), catalog="main", schema=SCHEMA, development=True, libraries=libraries).pipeline_id


def pipeline_task(pipeline_id, **kw):
    return jobs.Task(task_key="refresh", pipeline_task=jobs.PipelineTask(pipeline_id=pipeline_id, **kw))


def latest_update(w, pipeline_id):
    (update,) = w.pipelines.list_updates(pipeline_id, max_results=1).updates
    return w.pipelines.get_update(pipeline_id, update.update_id).update


@pytest.fixture(scope="module")
def orders(w):
    try:
        w.schemas.create(name=SCHEMA, catalog_name="main")
    except errors.ResourceAlreadyExists:
        pass
    w.volumes.create(catalog_name="main", schema_name=SCHEMA, name="landing", volume_type=VolumeType.MANAGED)
    w.files.upload(f"{LANDING}/one.json", lines(ONE))
    return make_pipeline(w, "orders", source("orders", LANDING))


def test_a_job_task_runs_the_pipeline(w, orders):
    job = w.jobs.create(name=unique("refresh"), tasks=[pipeline_task(orders)])
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state.state_message
    (task,) = run.tasks
    assert task.pipeline_task.pipeline_id == orders
    update = latest_update(w, orders)
    assert (update.state.value, update.cause.value, update.full_refresh) == ("COMPLETED", "JOB_TASK", False)
    assert sql_rows(w, f"SELECT id, amount FROM main.{SCHEMA}.orders ORDER BY id") == [["a", "10"], ["c", "7"]]
    assert sql_rows(w, f"SELECT count(*) FROM main.{SCHEMA}.orders_raw") == [["3"]]


def test_a_full_refresh_rewrites_the_tables(w, orders):
    # Without a refresh the bronze table would keep file one's rows.
    w.files.delete(f"{LANDING}/one.json")
    w.files.upload(f"{LANDING}/two.json", lines(TWO))
    run = w.jobs.submit_and_wait(run_name=unique("full"), tasks=[
        jobs.SubmitTask(task_key="refresh", pipeline_task=jobs.PipelineTask(pipeline_id=orders, full_refresh=True))], timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state.state_message
    update = latest_update(w, orders)
    assert (update.cause.value, update.full_refresh) == ("JOB_TASK", True)
    assert sql_rows(w, f"SELECT id, amount FROM main.{SCHEMA}.orders_raw ORDER BY id") == [["d", "4"], ["e", "0"]]
    assert sql_rows(w, f"SELECT id, amount FROM main.{SCHEMA}.orders ORDER BY id") == [["d", "4"]]


def test_a_broken_source_fails_the_task_with_the_update_error(w, orders):
    broken = make_pipeline(w, "broken_orders", BROKEN)
    job = w.jobs.create(name=unique("broken"), tasks=[pipeline_task(broken)])
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    (task,) = run.tasks
    assert task.state.result_state == jobs.RunResultState.FAILED
    assert "SyntaxError" in task.state.state_message and "broken_orders.py:4" in task.state.state_message
    assert "SyntaxError" in w.jobs.get_run_output(task.run_id).error
    assert latest_update(w, broken).state.value == "FAILED"
    w.pipelines.delete(broken)


def test_an_unknown_pipeline_fails_the_task_and_a_bad_task_is_refused(w):
    run = w.jobs.submit_and_wait(run_name=unique("ghost"), tasks=[
        jobs.SubmitTask(task_key="refresh", pipeline_task=jobs.PipelineTask(pipeline_id="no-such-pipeline"))], timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert "no-such-pipeline was not found" in run.tasks[0].state.state_message
    with pytest.raises(errors.InvalidParameterValue, match="needs a pipeline_id"):
        w.jobs.create(name=unique("bad"), tasks=[pipeline_task("")])
    with pytest.raises(errors.InvalidParameterValue, match="both full_refresh and full_refresh_selection"):
        w.jobs.create(name=unique("bad"), tasks=[pipeline_task("x", full_refresh=True, full_refresh_selection=["orders"])])
    with pytest.raises(errors.NotImplemented, match="parameters"):
        w.jobs.create(name=unique("bad"), tasks=[pipeline_task("x", parameters={"a": "b"})])


def held_source(release):
    """A pipeline whose one flow waits until the file `release` exists."""
    return f'''import dlt, os, time
from pyspark.sql.functions import col, udf

@udf("long")
def held(x):
    while not os.path.exists("{release}"):
        time.sleep(0.2)
    return x

@dlt.table
def held_rows():
    return spark.range(3).select(held(col("id")).alias("id"))
'''


def test_a_busy_pipeline_fails_the_task_and_a_cancel_stops_the_update(w, orders, tmp_path):
    release = tmp_path / "release"
    held = make_pipeline(w, "held", held_source(release))
    job = w.jobs.create(name=unique("held"), tasks=[pipeline_task(held)])
    first = w.jobs.run_now(job.job_id).run_id
    wait_for(lambda: w.pipelines.list_updates(held).updates, timeout=60)
    wait_for(lambda: latest_update(w, held).state.value == "RUNNING", timeout=300, interval=0.5)
    update_id = latest_update(w, held).update_id
    # The flow is held: a second run finds the update still active.
    busy = w.jobs.submit_and_wait(run_name=unique("busy"), tasks=[
        jobs.SubmitTask(task_key="refresh", pipeline_task=jobs.PipelineTask(pipeline_id=held))], timeout=WAIT)
    assert busy.state.result_state == jobs.RunResultState.FAILED
    assert f"An active update {update_id} already exists" in busy.tasks[0].state.state_message
    w.jobs.cancel_run(first)
    ended = w.jobs.wait_get_run_job_terminated_or_skipped(first, timeout=WAIT)
    assert ended.state.result_state == jobs.RunResultState.CANCELED
    release.write_text("go")
    wait_for(lambda: w.pipelines.get_update(held, update_id).update.state.value in ("CANCELED", "COMPLETED", "FAILED"),
             timeout=300, interval=0.5)
    assert w.pipelines.get_update(held, update_id).update.state.value == "CANCELED"
    w.pipelines.delete(held)


def test_the_cli_creates_starts_follows_and_shows_events(w, tarn, orders, tmp_path):
    env = dict(os.environ, DATABRICKS_HOST=tarn.url, DATABRICKS_TOKEN=tarn.token)

    def cli(*args):
        return subprocess.run([tarn_binary(), "pipelines", *args], env=env, capture_output=True, text=True, timeout=600)

    w.files.upload(f"{CLI_LANDING}/one.json", lines(ONE))
    w.files.upload(f"{CLI_LANDING}/two.json", lines(TWO))
    path = put_source(w, "cli_orders", source("cli_orders", CLI_LANDING))
    settings = {"name": unique("cli"), "catalog": "main", "schema": SCHEMA, "development": True,
                "libraries": [{"file": {"path": path}}]}
    (tmp_path / "pipeline.json").write_text(json.dumps(settings))
    created = cli("create", "--json", f"@{tmp_path / 'pipeline.json'}")
    assert created.returncode == 0, created.stderr
    pipeline_id = json.loads(created.stdout)["pipeline_id"]
    assert json.loads(cli("get", pipeline_id).stdout)["spec"]["name"] == settings["name"]

    started = cli("start", pipeline_id)
    assert started.returncode == 0, started.stdout + started.stderr
    # Five orders; b (-3) and e (0) dropped.
    assert "cli_orders_raw: COMPLETED, 5 rows" in started.stdout, started.stdout
    assert "cli_orders: COMPLETED, 3 rows, 2 dropped; positive 3 passed 2 failed" in started.stdout, started.stdout
    assert started.stdout.strip().endswith("COMPLETED")

    events = cli("events", pipeline_id).stdout.strip().splitlines()
    assert "update_progress" in events[-1] and "COMPLETED" in events[-1], events[-1]
    assert any("flow_progress" in e and "cli_orders" in e for e in events)

    (tmp_path / "broken.json").write_text(json.dumps({**settings, "name": unique("cli_broken"), "libraries": [
        {"file": {"path": put_source(w, "cli_broken", BROKEN)}}]}))
    broken = json.loads(cli("create", str(tmp_path / "broken.json")).stdout)["pipeline_id"]
    failed = cli("start", broken)
    assert failed.returncode == 1 and "ended FAILED" in failed.stderr, failed.stdout + failed.stderr
    assert "SyntaxError" in failed.stdout
    for pipeline in (pipeline_id, broken):
        w.pipelines.delete(pipeline)
