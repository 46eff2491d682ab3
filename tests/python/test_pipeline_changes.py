"""AUTO CDC through `w.pipelines`: change events applied as SCD type 1 and
type 2, in Python (`dlt.create_auto_cdc_flow`) and in SQL (`AUTO CDC
INTO`), with updates, deletes and events that arrive out of order across
two updates. The expected tables are worked out by hand below."""

import io
import json

import pytest
from databricks.sdk import errors
from databricks.sdk.service.catalog import VolumeType
from databricks.sdk.service.pipelines import FileLibrary, PipelineLibrary
from databricks.sdk.service.workspace import ImportFormat

from test_pipelines import finish, flow_events, lines, sql_rows

LANDING = "/Volumes/main/cdc/landing/users"

PYTHON = '''import dlt
from pyspark.sql.functions import col, expr

@dlt.view
def user_changes():
    return spark.readStream.format("cloudFiles").option("cloudFiles.format", "json") \\
        .option("cloudFiles.inferColumnTypes", "true").load("/Volumes/main/cdc/landing/users")

dlt.create_streaming_table("users_current")
dlt.create_auto_cdc_flow(
    target="users_current", source="user_changes", keys=["id"], sequence_by=col("seq"),
    apply_as_deletes=expr("op = 'DELETE'"), except_column_list=["op"], stored_as_scd_type=1)

@dlt.table
def current_copy():
    # The AUTO CDC target is rewritten each update: its change commits are passed over.
    return spark.readStream.option("skipChangeCommits", "true").table("users_current")

dlt.create_streaming_table("users_history")
dlt.apply_changes(
    target="users_history", source="user_changes", keys=["id"], sequence_by="seq",
    apply_as_deletes=expr("op = 'DELETE'"), except_column_list=["op", "seq"], stored_as_scd_type="2")
'''

SQL = '''CREATE OR REFRESH STREAMING TABLE raw_changes AS
SELECT * FROM STREAM read_files('/Volumes/main/cdc/landing/users', format => 'json', inferColumnTypes => 'true');

CREATE OR REFRESH STREAMING TABLE users_sql_history;

CREATE FLOW users_sql_history_flow AS AUTO CDC INTO users_sql_history
FROM STREAM(raw_changes)
KEYS (id)
APPLY AS DELETE WHEN op = 'DELETE'
SEQUENCE BY seq
COLUMNS * EXCEPT (op, seq)
STORED AS SCD TYPE 2;
'''

FIRST = [
    {"id": 1, "name": "ann", "city": "oslo", "op": "INSERT", "seq": 1},
    {"id": 2, "name": "bob", "city": "rome", "op": "INSERT", "seq": 1},
    {"id": 1, "name": "ann", "city": "bergen", "op": "UPDATE", "seq": 3},
    {"id": 3, "name": "cy", "city": "lima", "op": "INSERT", "seq": 2},
    {"id": 2, "name": None, "city": None, "op": "DELETE", "seq": 4},
]
# Arrives later but is sequenced between ann's two rows, and a late update
# of bob sequenced before bob's delete must not bring bob back.
SECOND = [
    {"id": 1, "name": "ann", "city": "tromso", "op": "UPDATE", "seq": 2},
    {"id": 2, "name": "bob", "city": "milan", "op": "UPDATE", "seq": 3},
    {"id": 3, "name": "cy", "city": "cusco", "op": "UPDATE", "seq": 5},
]


def upload(w, path, text):
    w.workspace.upload(path, io.BytesIO(text.encode()), format=ImportFormat.RAW, overwrite=True)


@pytest.fixture(scope="module")
def pipelines(w):
    try:
        w.schemas.create(name="cdc", catalog_name="main")
    except errors.ResourceAlreadyExists:
        pass
    w.volumes.create(catalog_name="main", schema_name="cdc", name="landing", volume_type=VolumeType.MANAGED)
    w.files.upload(f"{LANDING}/changes-1.json", lines(FIRST))
    me = w.current_user.me().user_name
    w.workspace.mkdirs(f"/Users/{me}/cdc")
    upload(w, f"/Users/{me}/cdc/users.py", PYTHON)
    upload(w, f"/Users/{me}/cdc/users.sql", SQL)
    made = {}
    for name, file in (("python", "users.py"), ("sql", "users.sql")):
        made[name] = w.pipelines.create(
            name=f"users-cdc-{name}",
            catalog="main",
            schema="cdc",
            libraries=[PipelineLibrary(file=FileLibrary(path=f"/Users/{me}/cdc/{file}"))],
        ).pipeline_id
    return made


def run(w, pipeline_id):
    update_id = w.pipelines.start_update(pipeline_id).update_id
    state = finish(w, pipeline_id, update_id)
    assert state == "COMPLETED", [e.message for e in w.pipelines.list_pipeline_events(pipeline_id)]
    return update_id


def history(w, table):
    return sql_rows(w, f"SELECT id, name, city, __START_AT, __END_AT FROM {table} ORDER BY id, __START_AT")


def test_scd1_and_scd2_from_the_first_changes(w, pipelines):
    run(w, pipelines["python"])
    current = sql_rows(w, "SELECT id, name, city, seq FROM main.cdc.users_current ORDER BY id")
    assert current == [["1", "ann", "bergen", "3"], ["3", "cy", "lima", "2"]]
    assert history(w, "main.cdc.users_history") == [
        ["1", "ann", "oslo", "1", "3"],
        ["1", "ann", "bergen", "3", None],
        ["2", "bob", "rome", "1", "4"],
        ["3", "cy", "lima", "2", None],
    ]
    columns = [c.name for c in w.tables.get("main.cdc.users_history").columns]
    assert columns == ["id", "name", "city", "__START_AT", "__END_AT"]
    assert w.tables.get("main.cdc.users_current").table_type.value == "STREAMING_TABLE"
    copy = [["1", "ann", "bergen", "3"], ["3", "cy", "lima", "2"]]
    assert sql_rows(w, "SELECT id, name, city, seq FROM main.cdc.current_copy ORDER BY id") == copy


def test_late_events_land_where_their_sequence_puts_them(w, pipelines):
    w.files.upload(f"{LANDING}/changes-2.json", lines(SECOND))
    update_id = run(w, pipelines["python"])
    current = sql_rows(w, "SELECT id, name, city, seq FROM main.cdc.users_current ORDER BY id")
    assert current == [["1", "ann", "bergen", "3"], ["3", "cy", "cusco", "5"]]
    # users_current's rewrite is a change commit: skipChangeCommits passes over it.
    copied = sql_rows(w, "SELECT id, city FROM main.cdc.current_copy ORDER BY id")
    assert copied == [["1", "bergen"], ["3", "lima"]]
    expected = [
        ["1", "ann", "oslo", "1", "2"],
        ["1", "ann", "tromso", "2", "3"],
        ["1", "ann", "bergen", "3", None],
        ["2", "bob", "rome", "1", "3"],
        ["2", "bob", "milan", "3", "4"],
        ["3", "cy", "lima", "2", "5"],
        ["3", "cy", "cusco", "5", None],
    ]
    assert history(w, "main.cdc.users_history") == expected
    statuses = {e["origin"]["flow_name"]: e["details"]["flow_progress"] for e in flow_events(w, pipelines["python"], update_id)
                if e["details"]["flow_progress"]["status"] == "COMPLETED"}
    assert statuses["users_history"]["metrics"]["num_output_rows"] == len(expected)
    # Nothing new: the table is left as it is.
    update_id = run(w, pipelines["python"])
    statuses = {e["origin"]["flow_name"]: e["details"]["flow_progress"] for e in flow_events(w, pipelines["python"], update_id)
                if e["details"]["flow_progress"]["status"] == "COMPLETED"}
    assert statuses["users_current"]["mode"] == "NO_NEW_DATA"
    assert history(w, "main.cdc.users_history") == expected


def test_the_sql_pipeline_builds_the_same_history(w, pipelines):
    run(w, pipelines["sql"])
    rows = history(w, "main.cdc.users_sql_history")
    assert rows == history(w, "main.cdc.users_history")
    assert sql_rows(w, "SELECT count(*) FROM main.cdc.raw_changes") == [["8"]]
