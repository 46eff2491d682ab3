"""Auto Loader's schema evolution modes and `maxFilesPerTrigger` through
`w.pipelines`: a second file brings a new column, and each mode does what
Databricks documents (addNewColumns adds it, rescue puts it in
`_rescued_data`, none ignores it, failOnNewColumns fails the update)."""

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
from databricks.sdk import errors
from databricks.sdk.service import jobs
from databricks.sdk.service.catalog import VolumeType
from databricks.sdk.service.pipelines import FileLibrary, PipelineLibrary

from conftest import wait_for
from test_pipeline_changes import upload
from test_pipelines import finish, flow_events, lines, sql_rows

LANDING = "/Volumes/main/loader/landing/events"
STRICT = "/Volumes/main/loader/landing/strict"

MODES = '''import dlt

def events(**options):
    reader = spark.readStream.format("cloudFiles").option("cloudFiles.format", "json")
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.load("/Volumes/main/loader/landing/events")

@dlt.table
def events_added():
    return events()

@dlt.table
def events_rescued():
    return events(**{"cloudFiles.schemaEvolutionMode": "rescue"})

@dlt.table
def events_fixed():
    return events(**{"cloudFiles.schemaEvolutionMode": "none"})

@dlt.table
def events_batched():
    return events(**{"cloudFiles.maxFilesPerTrigger": "1"})

@dlt.view
@dlt.expect_or_drop("has_name", "name IS NOT NULL")
@dlt.expect("not_b", "name <> 'b'")
def checked_events():
    return dlt.read_stream("events_added")

@dlt.table
def checked_copy():
    return dlt.read_stream("checked_events").select("id", "name")

@dlt.table(comment="a projection of appends: refreshed with the new rows only")
def named_events():
    return dlt.read("events_added").where("name <> 'b'").select("id", "name")
'''

STRICT_PIPELINE = '''import dlt

@dlt.table
def strict_events():
    return (spark.readStream.format("cloudFiles").option("cloudFiles.format", "json")
            .option("cloudFiles.schemaEvolutionMode", "failOnNewColumns")
            .load("/Volumes/main/loader/landing/strict"))
'''

FIRST = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
SECOND = [{"id": 3, "name": "c", "color": "red"}]
THIRD = [{"id": 4, "name": "d"}]


def make(w, name, text):
    me = w.current_user.me().user_name
    w.workspace.mkdirs(f"/Users/{me}/loader")
    path = f"/Users/{me}/loader/{name}.py"
    upload(w, path, text)
    return w.pipelines.create(
        name=name, catalog="main", schema="loader", libraries=[PipelineLibrary(file=FileLibrary(path=path))]
    ).pipeline_id


@pytest.fixture(scope="module")
def pipelines(w):
    try:
        w.schemas.create(name="loader", catalog_name="main")
    except errors.ResourceAlreadyExists:
        pass
    w.volumes.create(catalog_name="main", schema_name="loader", name="landing", volume_type=VolumeType.MANAGED)
    w.files.upload(f"{LANDING}/1.json", lines(FIRST))
    w.files.upload(f"{STRICT}/1.json", lines(FIRST))
    return make(w, "loader-modes", MODES), make(w, "loader-strict", STRICT_PIPELINE)


def run(w, pipeline_id):
    update_id = w.pipelines.start_update(pipeline_id).update_id
    return update_id, finish(w, pipeline_id, update_id)


def columns(w, table):
    return [c.name for c in w.tables.get(f"main.loader.{table}").columns]


def commits(w, table):
    location = Path(urlparse(w.tables.get(f"main.loader.{table}").storage_location).path)
    return len(list((location / "_delta_log").glob("*.json")))


def test_the_first_files_set_the_columns(w, pipelines):
    modes, strict = pipelines
    updates = {}
    for pipeline_id in (modes, strict):
        updates[pipeline_id], state = run(w, pipeline_id)
        assert state == "COMPLETED", [e.message for e in w.pipelines.list_pipeline_events(pipeline_id)]
    first = {e["origin"]["flow_name"]: e["details"]["flow_progress"] for e in flow_events(w, modes, updates[modes])
             if e["details"]["flow_progress"]["status"] == "COMPLETED"}
    assert first["named_events"]["mode"] == "COMPLETE_RECOMPUTE"
    # A view's expectations are counted in the flow that reads it, under the view.
    counted = {(e["dataset"], e["name"]): (e["passed_records"], e["failed_records"])
               for e in first["checked_copy"]["data_quality"]["expectations"]}
    assert counted == {("checked_events", "has_name"): (2, 0), ("checked_events", "not_b"): (1, 1)}
    assert sql_rows(w, "SELECT id, name FROM main.loader.checked_copy ORDER BY id") == [["1", "a"], ["2", "b"]]
    assert columns(w, "events_added") == ["id", "name"]
    assert columns(w, "events_rescued") == ["id", "name", "_rescued_data"]
    assert sql_rows(w, "SELECT count(*) FROM main.loader.strict_events") == [["2"]]
    assert w.tables.get("main.loader.named_events").table_type.value == "MATERIALIZED_VIEW"


def test_a_new_column_under_each_mode(w, pipelines):
    modes, strict = pipelines
    w.files.upload(f"{LANDING}/2.json", lines(SECOND))
    w.files.upload(f"{LANDING}/3.json", lines(THIRD))
    batched_before = commits(w, "events_batched")
    update_id, state = run(w, modes)
    assert state == "COMPLETED", [e.message for e in w.pipelines.list_pipeline_events(modes)]

    assert columns(w, "events_added") == ["id", "name", "color"]
    assert sql_rows(w, "SELECT id, color FROM main.loader.events_added ORDER BY id") == [
        ["1", None], ["2", None], ["3", "red"], ["4", None]]

    assert columns(w, "events_rescued") == ["id", "name", "_rescued_data"]
    rescued = sql_rows(w, "SELECT id, _rescued_data FROM main.loader.events_rescued ORDER BY id")
    assert [r[0] for r in rescued] == ["1", "2", "3", "4"]
    assert json.loads(rescued[2][1]) == {"color": "red"} and rescued[3][1] is None

    assert columns(w, "events_fixed") == ["id", "name"]
    assert sql_rows(w, "SELECT count(*) FROM main.loader.events_fixed") == [["4"]]

    # One file per batch: two commits in this update, both counted in its event.
    assert commits(w, "events_batched") == batched_before + 2
    flows = {e["origin"]["flow_name"]: e["details"]["flow_progress"] for e in flow_events(w, modes, update_id)
             if e["details"]["flow_progress"]["status"] == "COMPLETED"}
    assert flows["events_batched"]["metrics"]["num_output_rows"] == 2
    assert sql_rows(w, "SELECT count(*) FROM main.loader.events_batched") == [["4"]]

    # The materialized view took only the two appended rows.
    assert flows["named_events"]["mode"] == "INCREMENTAL"
    assert flows["named_events"]["metrics"]["num_output_rows"] == 2
    assert sql_rows(w, "SELECT id, name FROM main.loader.named_events ORDER BY id") == [
        ["1", "a"], ["3", "c"], ["4", "d"]]

    w.files.upload(f"{STRICT}/2.json", lines(SECOND))
    update_id, state = run(w, strict)
    assert state == "FAILED"
    messages = " ".join(e.message for e in w.pipelines.list_pipeline_events(strict) if e.origin.update_id == update_id)
    assert "color" in messages and "failOnNewColumns" in messages, messages
    assert sql_rows(w, "SELECT count(*) FROM main.loader.strict_events") == [["2"]]


CONTINUOUS = '''import dlt

@dlt.table
def live_events():
    return (spark.readStream.format("cloudFiles").option("cloudFiles.format", "json")
            .load("/Volumes/main/loader/landing/live"))

@dlt.table
def live_count():
    return dlt.read("live_events").groupBy().count()
'''


def test_a_continuous_update_reads_new_files_until_stopped(w, pipelines):
    """`continuous: true`: one update stays RUNNING and takes each new file
    on its next pass (`pipelines.trigger.interval`); stop ends it CANCELED.
    A job cannot run it as a pipeline task."""
    live = "/Volumes/main/loader/landing/live"
    w.files.upload(f"{live}/1.json", lines(FIRST))
    me = w.current_user.me().user_name
    path = f"/Users/{me}/loader/continuous.py"
    upload(w, path, CONTINUOUS)
    pipeline_id = w.pipelines.create(
        name="loader-continuous", catalog="main", schema="loader", continuous=True,
        configuration={"pipelines.trigger.interval": "1 second"},
        libraries=[PipelineLibrary(file=FileLibrary(path=path))]).pipeline_id
    assert w.pipelines.get(pipeline_id).spec.continuous is True
    update_id = w.pipelines.start_update(pipeline_id).update_id

    def count_is(n):
        try:
            return sql_rows(w, "SELECT count FROM main.loader.live_count") == [[str(n)]]
        except (AssertionError, errors.DatabricksError):
            return False

    wait_for(lambda: count_is(2), timeout=120, interval=0.5)
    w.files.upload(f"{live}/2.json", lines(THIRD))
    wait_for(lambda: count_is(3), timeout=60, interval=0.5)
    assert w.pipelines.get_update(pipeline_id, update_id).update.state.value == "RUNNING"
    assert sql_rows(w, "SELECT id FROM main.loader.live_events ORDER BY id") == [["1"], ["2"], ["4"]]
    task = jobs.SubmitTask(task_key="p", pipeline_task=jobs.PipelineTask(pipeline_id=pipeline_id))
    run = w.jobs.submit_and_wait(run_name="continuous", tasks=[task])
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert "is continuous" in run.tasks[0].state.state_message
    w.pipelines.stop(pipeline_id)
    assert finish(w, pipeline_id, update_id, timeout=60) == "CANCELED"
    passes = [e for e in flow_events(w, pipeline_id, update_id)
              if e["origin"]["flow_name"] == "live_events" and e["details"]["flow_progress"]["status"] == "COMPLETED"]
    assert len(passes) >= 2
    assert w.pipelines.get(pipeline_id).state.value == "IDLE"
