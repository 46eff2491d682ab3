"""Declarative pipelines through databricks-sdk's `w.pipelines`: the course
example (Auto Loader bronze, silver with DROP expectations, gold aggregate)
run on a laptop, its counts checked against hand-computed figures."""

import io
import json

import pytest
from databricks.sdk import errors
from databricks.sdk.service.catalog import VolumeType
from databricks.sdk.service.pipelines import EventLogSpec, FileLibrary, NotebookLibrary, PipelineLibrary
from databricks.sdk.service.workspace import ImportFormat, Language

from conftest import wait_for

LANDING = "/Volumes/main/raw/landing/customer_events"

EXAMPLE = '''import dlt
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
'''

# Six events: one without a customer, one with a non-positive amount.
FIRST = [
    {"customer_id": "c1", "event_type": "view", "amount": "10.0", "event_timestamp": "2026-01-01T10:00:00"},
    {"customer_id": "c1", "event_type": "buy", "amount": "30.0", "event_timestamp": "2026-01-01T11:00:00"},
    {"customer_id": "c2", "event_type": "view", "amount": "5.0", "event_timestamp": "2026-01-01T12:00:00"},
    {"customer_id": None, "event_type": "view", "amount": "7.0", "event_timestamp": "2026-01-01T13:00:00"},
    {"customer_id": "c2", "event_type": "refund", "amount": "-5.0", "event_timestamp": "2026-01-01T14:00:00"},
    {"customer_id": "c3", "event_type": "buy", "amount": "100.0", "event_timestamp": "2026-01-01T15:00:00"},
]
SECOND = [
    {"customer_id": "c3", "event_type": "buy", "amount": "50.0", "event_timestamp": "2026-01-02T10:00:00"},
    {"customer_id": "c4", "event_type": "view", "amount": "0", "event_timestamp": "2026-01-02T11:00:00"},
]


def lines(events):
    return io.BytesIO("\n".join(json.dumps(e) for e in events).encode())


def sql_rows(w, statement):
    (warehouse,) = list(w.warehouses.list())
    r = w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse.id, wait_timeout="50s")
    assert r.status.state.value == "SUCCEEDED", r.status
    return r.result.data_array or []


def finish(w, pipeline_id, update_id, timeout=240):
    def ended():
        state = w.pipelines.get_update(pipeline_id, update_id).update.state.value
        return state if state in ("COMPLETED", "FAILED", "CANCELED") else None

    return wait_for(ended, timeout=timeout, interval=0.5)


def flow_events(w, pipeline_id, update_id):
    """The REST events with `details` (the SDK's class drops it)."""
    body = w.api_client.do("GET", f"/api/2.0/pipelines/{pipeline_id}/events", query={"max_results": 100})
    return [e for e in body["events"] if e["origin"].get("update_id") == update_id and e["event_type"] == "flow_progress"]


def completed(events, flow):
    (event,) = [e for e in events if e["origin"]["flow_name"] == flow and e["details"]["flow_progress"]["status"] == "COMPLETED"]
    return event["details"]["flow_progress"]


@pytest.fixture(scope="module")
def example(w):
    try:
        w.schemas.create(name="raw", catalog_name="main")
        w.schemas.create(name="ml", catalog_name="main")
    except errors.ResourceAlreadyExists:
        pass
    w.volumes.create(catalog_name="main", schema_name="raw", name="landing", volume_type=VolumeType.MANAGED)
    w.files.upload(f"{LANDING}/part-0001.json", lines(FIRST))
    me = w.current_user.me().user_name
    path = f"/Users/{me}/pipelines/customer_events.py"
    w.workspace.mkdirs(f"/Users/{me}/pipelines")
    w.workspace.upload(path, io.BytesIO(EXAMPLE.encode()), format=ImportFormat.RAW, overwrite=True)
    created = w.pipelines.create(
        name="customer-features",
        catalog="main",
        schema="ml",
        development=True,
        libraries=[PipelineLibrary(file=FileLibrary(path=path))],
    )
    return created.pipeline_id


def test_the_course_example_runs_with_its_expectations(w, example):
    update_id = w.pipelines.start_update(example).update_id
    assert finish(w, example, update_id) == "COMPLETED", [e.message for e in w.pipelines.list_pipeline_events(example)]
    assert w.pipelines.get(example).state.value == "IDLE"
    events = flow_events(w, example, update_id)
    assert completed(events, "raw_customer_events")["metrics"]["num_output_rows"] == 6
    silver = completed(events, "cleaned_customer_events")
    assert silver["metrics"]["num_output_rows"] == 4
    quality = {e["name"]: (e["passed_records"], e["failed_records"]) for e in silver["data_quality"]["expectations"]}
    assert quality == {"valid_customer_id": (5, 1), "valid_amount": (5, 1)}
    assert silver["data_quality"]["dropped_records"] == 2
    rows = sql_rows(w, "SELECT customer_id, total_events, avg_amount FROM main.ml.customer_ml_features ORDER BY customer_id")
    assert rows == [["c1", "2", "20.0"], ["c2", "1", "5.0"], ["c3", "1", "100.0"]]
    table = w.tables.get("main.ml.cleaned_customer_events")
    assert table.table_type.value == "STREAMING_TABLE" and table.comment == "Cleaned customer events with quality checks"
    assert table.properties["quality"] == "silver" and table.properties["pipelines.pipelineId"] == example
    assert w.tables.get("main.ml.customer_ml_features").table_type.value == "MATERIALIZED_VIEW"


def test_a_second_update_reads_only_the_new_file(w, example):
    w.files.upload(f"{LANDING}/part-0002.json", lines(SECOND))
    update_id = w.pipelines.start_update(example).update_id
    assert finish(w, example, update_id) == "COMPLETED"
    events = flow_events(w, example, update_id)
    assert completed(events, "raw_customer_events")["metrics"]["num_output_rows"] == 2
    assert completed(events, "cleaned_customer_events")["metrics"]["num_output_rows"] == 1
    assert sql_rows(w, "SELECT count(*) FROM main.ml.raw_customer_events") == [["8"]]
    rows = sql_rows(w, "SELECT customer_id, total_events FROM main.ml.customer_ml_features WHERE customer_id = 'c3'")
    assert rows == [["c3", "2"]]
    # Nothing new: the streaming flows say so and write nothing.
    update_id = w.pipelines.start_update(example).update_id
    assert finish(w, example, update_id) == "COMPLETED"
    assert completed(flow_events(w, example, update_id), "raw_customer_events")["mode"] == "NO_NEW_DATA"
    assert sql_rows(w, "SELECT count(*) FROM main.ml.raw_customer_events") == [["8"]]


def test_the_event_log_reads_in_sql(w, example):
    """`event_log('<id>')` as in Databricks SQL; `details` is JSON text."""
    rows = sql_rows(
        w,
        f"""SELECT get_json_object(details, '$.flow_progress.metrics.num_output_rows'),
                   get_json_object(details, '$.flow_progress.data_quality.dropped_records')
            FROM event_log('{example}')
            WHERE event_type = 'flow_progress' AND origin.flow_name = 'cleaned_customer_events'
              AND get_json_object(details, '$.flow_progress.status') = 'COMPLETED'
            ORDER BY timestamp""",
    )
    # The three updates above: 4 rows (2 dropped), then 1 (1 dropped), then nothing new.
    assert rows == [["4", "2"], ["1", "1"], ["0", None]]
    lineage = sql_rows(
        w,
        f"""SELECT get_json_object(details, '$.flow_definition.input_datasets[0].name') FROM event_log('{example}')
            WHERE event_type = 'flow_definition' AND origin.flow_name = 'customer_ml_features' LIMIT 1""",
    )
    assert lineage == [["main.ml.cleaned_customer_events"]]
    (warehouse,) = list(w.warehouses.list())
    failed = w.statement_execution.execute_statement(
        statement="SELECT * FROM event_log('no-such-pipeline')", warehouse_id=warehouse.id, wait_timeout="30s")
    assert failed.status.state.value == "FAILED" and "no-such-pipeline" in failed.status.error.message


def test_bad_input_answers_in_the_databricks_shape(w, example):
    with pytest.raises(errors.NotFound):
        w.pipelines.get("no-such-pipeline")
    with pytest.raises(errors.NotFound):
        w.pipelines.get_update(example, "no-such-update")
    with pytest.raises(errors.InvalidParameterValue):
        w.pipelines.create(name="customer-features", catalog="main", schema="ml")


def test_a_definition_error_fails_the_update_with_its_line(w):
    me = w.current_user.me().user_name
    path = f"/Users/{me}/pipelines/broken.py"
    w.workspace.upload(path, io.BytesIO(b"import dlt\n\n@dlt.table\ndef x(:\n    pass\n"), format=ImportFormat.RAW, overwrite=True)
    created = w.pipelines.create(name="broken", catalog="main", schema="ml", libraries=[PipelineLibrary(file=FileLibrary(path=path))])
    update_id = w.pipelines.start_update(created.pipeline_id).update_id
    assert finish(w, created.pipeline_id, update_id) == "FAILED"
    errors_ = [e for e in w.pipelines.list_pipeline_events(created.pipeline_id) if e.level.value == "ERROR"]
    assert any("SyntaxError" in e.message and f"{path}:4" in e.message for e in errors_), [e.message for e in errors_]
    assert w.pipelines.get(created.pipeline_id).state.value == "FAILED"
    w.pipelines.delete(created.pipeline_id)


NOTEBOOK = """# Databricks notebook source
import dlt
from pyspark.sql.functions import col

THRESHOLD = 10

# COMMAND ----------

@dlt.table(comment="Customers who spend")
def big_spenders():
    return spark.read.table("main.ml.customer_ml_features").where(col("avg_amount") > THRESHOLD)
"""


def test_a_notebook_library_shares_its_cells(w, example):
    """Cells of one notebook see each other's names, as in a notebook (runs
    after the example, whose gold table it reads)."""
    me = w.current_user.me().user_name
    path = f"/Users/{me}/pipelines/spenders"
    w.workspace.upload(path, io.BytesIO(NOTEBOOK.encode()), format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True)
    created = w.pipelines.create(
        name="spenders",
        catalog="main",
        schema="ml",
        libraries=[PipelineLibrary(notebook=NotebookLibrary(path=path))],
        event_log=EventLogSpec(catalog="main", schema="ml", name="spenders_events"),
    )
    update_id = w.pipelines.start_update(created.pipeline_id).update_id
    assert finish(w, created.pipeline_id, update_id) == "COMPLETED", [
        e.message for e in w.pipelines.list_pipeline_events(created.pipeline_id)
    ]
    assert sql_rows(w, "SELECT customer_id FROM main.ml.big_spenders ORDER BY customer_id") == [["c1"], ["c3"]]
    assert w.tables.get("main.ml.big_spenders").table_type.value == "MATERIALIZED_VIEW"
    # The event_log setting publishes the log under its name.
    rows = sql_rows(w, "SELECT count(*) FROM main.ml.spenders_events WHERE event_type = 'flow_progress'")
    assert int(rows[0][0]) >= 2
    w.pipelines.delete(created.pipeline_id)
    with pytest.raises(errors.NotFound):
        w.tables.get("main.ml.big_spenders")
