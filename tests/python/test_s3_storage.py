"""Storage on an S3-compatible object store (`TARN_STORAGE_ROOT=s3://…`)
against moto's server: DBFS through databricks-sdk, MLflow artifacts and a
served model through mlflow, a context's dbutils, tables written by the
engine and by tarn, volumes through the Files API and the engine. The bytes
land in the bucket and nothing under TARN_HOME; user code never sees the
credentials, and no log holds the secret."""

import datetime
import io
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from databricks.sdk.errors import ResourceAlreadyExists
from databricks.sdk.service.catalog import VolumeType
from databricks.sdk.service import jobs
from databricks.sdk.service.compute import Language
from databricks.sdk.service.pipelines import FileLibrary, PipelineLibrary
from databricks.sdk.service.workspace import ImportFormat
from databricks.sdk.service.serving import (
    AiGatewayConfig,
    AiGatewayInferenceTableConfig,
    DataframeSplitInput,
    EndpointCoreConfigInput,
    ServedEntityInput,
)
from databricks.sdk.service.sql import StatementState

from conftest import S3Server, own_server, wait_for
from test_contexts import Context
from test_job_runs import put_file
from test_pipelines import finish


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("moto") / "access.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(s3):
    yield from own_server("tarn-s3-", dict(s3.env, TARN_INFERENCE_FLUSH_MS="500"))


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def test_dbfs_lives_in_the_bucket(server, s3):
    w = server.client()
    w.dbfs.mkdirs("/data/in")
    w.dbfs.mkdirs("/data/empty")
    w.dbfs.upload("/data/in/small.csv", io.BytesIO(b"id\n1\n"))
    big = os.urandom(9 * 2**20 + 7)  # sent in 1 MiB blocks, put to S3 in parts
    w.dbfs.upload("/data/in/big.bin", io.BytesIO(big))
    assert w.dbfs.download("/data/in/big.bin").read() == big
    assert w.dbfs.read("/data/in/small.csv", offset=3, length=10).bytes_read == 2
    listed = sorted((f.path, f.is_dir, f.file_size) for f in w.dbfs.list("/data"))
    assert listed == [("/data/empty", True, 0), ("/data/in", True, 0)]
    assert sorted((f.path, f.file_size) for f in w.dbfs.list("/data/in")) == [
        ("/data/in/big.bin", len(big)), ("/data/in/small.csv", 5)]
    with pytest.raises(ResourceAlreadyExists):
        w.dbfs.put("/data/in/small.csv", contents="dmVyc2lvbiAy", overwrite=False)
    w.dbfs.move("/data/in", "/data/moved")
    assert s3.keys("dbfs/") == {
        "ws/dbfs/data/moved/small.csv": 5,
        "ws/dbfs/data/moved/big.bin": len(big),
        # Directories made empty keep a marker object, which moves with them.
        "ws/dbfs/data/moved/.tarn-dir": 0,
        "ws/dbfs/data/empty/.tarn-dir": 0,
    }
    assert s3.read("ws/dbfs/data/moved/small.csv") == b"id\n1\n"
    w.dbfs.delete("/data", recursive=True)
    assert s3.keys("dbfs/") == {}
    assert files_under(server.home / "dbfs") == []
    assert files_under(server.home / "tmp") == [], "spooled uploads and downloads are not left behind"


def test_mlflow_artifacts_and_a_served_model_live_in_the_bucket(server, s3, monkeypatch):
    from sklearn.linear_model import LinearRegression

    monkeypatch.setenv("DATABRICKS_HOST", server.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", server.token)
    mlflow.set_tracking_uri("databricks")
    mlflow.set_registry_uri("databricks")
    try:
        mlflow.set_experiment("/Users/admin/s3")
        X = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) % 3})
        with mlflow.start_run() as run:
            mlflow.log_text("kept in the bucket", "notes/summary.txt")
            info = mlflow.sklearn.log_model(LinearRegression().fit(X, 2 * X.a + X.b), name="m", input_example=X.head(2))
        assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/summary.txt") == "kept in the bucket"
        local = mlflow.pyfunc.load_model(info.model_uri)
        version = mlflow.register_model(info.model_uri, "s3_model").version
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    keys = s3.keys("artifacts/")
    experiment = run.info.experiment_id
    assert keys[f"ws/artifacts/{experiment}/{run.info.run_id}/artifacts/notes/summary.txt"] == len("kept in the bucket")
    assert f"ws/artifacts/{experiment}/logged_models/{info.model_id}/artifacts/MLmodel" in keys
    assert files_under(server.home / "artifacts") == []

    # The model server reads a local copy of the model's directory; the
    # requests land in an inference table in the bucket.
    w = server.client()
    w.serving_endpoints.create_and_wait(
        name="ep-s3",
        config=EndpointCoreConfigInput(
            name="ep-s3", served_entities=[ServedEntityInput(entity_name="s3_model", entity_version=version,
                                                             workload_size="Small", scale_to_zero_enabled=False)]),
        ai_gateway=AiGatewayConfig(inference_table_config=AiGatewayInferenceTableConfig(
            catalog_name="main", schema_name="default", table_name_prefix="ep_s3", enabled=True)),
    )
    data = [[1.0, 2.0], [4.0, 0.0]]
    answer = w.serving_endpoints.query("ep-s3", dataframe_split=DataframeSplitInput(columns=["a", "b"], data=data))
    expected = local.predict(pd.DataFrame(data, columns=["a", "b"]))
    assert answer.predictions == [pytest.approx(p) for p in expected]
    table = "main.default.ep_s3_payload"
    wait_for(lambda: rows(w, f"SELECT count(*) FROM {table}") == [["1"]], timeout=60, interval=1)
    location = w.tables.get(table).storage_location
    assert location.startswith("s3://tarn/ws/tables/")
    assert any(k.endswith(".parquet") for k in s3.keys(location.removeprefix("s3://tarn/ws/")))
    w.serving_endpoints.delete("ep-s3")


def test_proxied_artifacts_of_a_plain_mlflow_client(server, s3, tmp_path):
    mlflow.set_tracking_uri(server.url)
    try:
        mlflow.set_experiment("plain-s3")
        with mlflow.start_run() as run:
            (tmp_path / "table.csv").write_text("x,y\n1,2\n")
            mlflow.log_artifact(str(tmp_path / "table.csv"), "data")
        got = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/data", dst_path=str(tmp_path / "back"))
        assert (Path(got) / "table.csv").read_text() == "x,y\n1,2\n"
    finally:
        mlflow.set_tracking_uri(None)
    assert any(k.endswith(f"{run.info.run_id}/artifacts/data/table.csv") for k in s3.keys("artifacts/"))


def test_user_code_sees_no_storage_credentials(server, s3):
    w = server.client()
    ctx = Context(w, language=Language.PYTHON)
    try:
        seen = ctx.ok("import os\nsorted(k for k in os.environ if k.startswith('AWS_'))")
        assert seen.data == "[]"
        ctx.ok("dbutils.fs.put('dbfs:/from-context/a.txt', 'written by user code', True)")
    finally:
        ctx.destroy()
    assert s3.read("ws/dbfs/from-context/a.txt") == b"written by user code"


def run(w, statement):
    (warehouse,) = list(w.warehouses.list())
    return w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse.id, wait_timeout="50s")


def rows(w, statement):
    r = run(w, statement)
    assert r.status.state == StatementState.SUCCEEDED, r.status
    return r.result.data_array if r.result else []


def test_tables_live_in_the_bucket(server, s3):
    w = server.client()
    rows(w, "CREATE TABLE main.default.orders (id INT, amount DOUBLE) USING DELTA")
    rows(w, "INSERT INTO main.default.orders VALUES (1, 10.5), (2, 20.0)")
    rows(w, "CREATE TABLE main.default.totals AS SELECT sum(amount) AS total FROM main.default.orders")
    assert rows(w, "SELECT total FROM main.default.totals") == [["30.5"]]
    location = w.tables.get("main.default.orders").storage_location
    assert location.startswith("s3://tarn/ws/tables/")
    keys = s3.keys(location.removeprefix("s3://tarn/ws/"))
    assert any(k.endswith("/_delta_log/00000000000000000001.json") for k in keys), keys
    assert any(k.endswith(".parquet") for k in keys), keys
    # Statements tarn runs itself with delta-rs, on the same objects.
    rows(w, "ALTER TABLE main.default.orders ADD COLUMNS (note STRING)")
    rows(w, "INSERT INTO main.default.orders VALUES (3, 1.0, 'x')")
    assert rows(w, "SELECT count(*), max(note) FROM main.default.orders") == [["3", "x"]]
    rows(w, "OPTIMIZE main.default.orders")
    history = rows(w, "DESCRIBE HISTORY main.default.orders")
    assert [r[4] for r in history][:2] == ["OPTIMIZE", "WRITE"], history
    assert rows(w, "SELECT count(*) FROM main.default.orders") == [["3"]]
    assert files_under(server.home / "lake" / "tables") == []

    # A user reaches table files by the table's name, never by its path.
    bob = server.client(server.cli_token("bob@example.com"))
    r = run(bob, f"SELECT * FROM delta.`{location}`")
    assert r.status.state == StatementState.FAILED and "by path" in r.status.error.message, r.status


def test_volumes_live_in_the_bucket(server, s3):
    w = server.client()
    w.volumes.create(catalog_name="main", schema_name="default", name="landing", volume_type=VolumeType.MANAGED)
    location = w.volumes.read("main.default.landing").storage_location
    assert location.startswith("s3://tarn/ws/volumes/")
    rel = location.removeprefix("s3://tarn/ws/")
    w.files.create_directory("/Volumes/main/default/landing/empty")
    w.files.upload("/Volumes/main/default/landing/in/people.csv", io.BytesIO(b"id,name\n1,ann\n2,bo\n"))
    listed = [e.name for e in w.files.list_directory_contents("/Volumes/main/default/landing")]
    assert listed == ["empty", "in"]
    assert w.files.download("/Volumes/main/default/landing/in/people.csv").contents.read().startswith(b"id,name")
    assert set(s3.keys(rel)) == {f"ws/{rel}/empty/.tarn-dir", f"ws/{rel}/in/people.csv"}
    # The engine reads the volume's file from the bucket.
    got = rows(w, "SELECT count(*) FROM csv.`/Volumes/main/default/landing/in/people.csv`")
    assert got == [["3"]]
    w.volumes.delete("main.default.landing")
    assert s3.keys(rel) == {}
    assert files_under(server.home / "lake" / "volumes") == []


PIPELINE = """
CREATE OR REFRESH MATERIALIZED VIEW order_rows AS SELECT id, amount FROM main.default.orders;
CREATE OR REFRESH MATERIALIZED VIEW order_totals AS SELECT count(*) AS n, sum(amount) AS total FROM LIVE.order_rows;
CREATE OR REFRESH STREAMING TABLE clicks
AS SELECT * FROM STREAM read_files('/Volumes/main/default/raw/clicks', format => 'json');
"""


def test_pipeline_datasets_and_event_log_live_in_the_bucket(server, s3):
    """Runs after the tables test, whose `main.default.orders` it reads."""
    w = server.client()
    w.volumes.create(catalog_name="main", schema_name="default", name="raw", volume_type=VolumeType.MANAGED)
    w.files.upload("/Volumes/main/default/raw/clicks/1.json", io.BytesIO(b'{"user": "ann", "n": 1}\n{"user": "bo", "n": 2}\n'))
    me = w.current_user.me().user_name
    w.workspace.mkdirs(f"/Users/{me}/s3")
    w.workspace.upload(f"/Users/{me}/s3/p.sql", io.BytesIO(PIPELINE.encode()), format=ImportFormat.RAW, overwrite=True)
    pipeline_id = w.pipelines.create(name="on-s3", catalog="main", schema="default",
                                     libraries=[PipelineLibrary(file=FileLibrary(path=f"/Users/{me}/s3/p.sql"))]).pipeline_id
    assert s3.read(f"ws/workspace/Users/{me}/s3/p.sql") == PIPELINE.encode()
    update_id = w.pipelines.start_update(pipeline_id).update_id
    assert finish(w, pipeline_id, update_id) == "COMPLETED"
    assert rows(w, "SELECT n, total FROM main.default.order_totals") == [["3", "31.5"]]
    location = w.tables.get("main.default.order_totals").storage_location
    assert location.startswith(f"s3://tarn/ws/pipelines/{pipeline_id}/"), location
    keys = s3.keys(f"pipelines/{pipeline_id}/")
    assert any("/order_totals/_delta_log/" in k for k in keys) and any("/_tarn_event_log/" in k for k in keys), keys
    completed = (f"SELECT count(*) FROM event_log('{pipeline_id}') WHERE event_type = 'flow_progress' "
                 "AND origin.flow_name = 'order_totals' AND get_json_object(details, '$.flow_progress.status') = 'COMPLETED'")
    wait_for(lambda: rows(w, completed) == [["1"]], timeout=30, interval=1)
    assert rows(w, "SELECT user, n FROM main.default.clicks ORDER BY n") == [["ann", "1"], ["bo", "2"]]
    # The next update takes only the new file (with a new column) and
    # recomputes the views from the tables in the bucket.
    w.files.upload("/Volumes/main/default/raw/clicks/2.json", io.BytesIO(b'{"user": "cy", "n": 3, "page": "/a"}\n'))
    assert finish(w, pipeline_id, w.pipelines.start_update(pipeline_id).update_id) == "COMPLETED"
    assert rows(w, "SELECT n FROM main.default.order_totals") == [["3"]]
    assert rows(w, "SELECT user, page FROM main.default.clicks ORDER BY n") == [["ann", None], ["bo", None], ["cy", "/a"]]
    assert files_under(server.home / "lake" / "pipelines") == []
    assert files_under(server.home / "workspace") == []
    w.pipelines.delete(pipeline_id)
    wait_for(lambda: s3.keys(f"pipelines/{pipeline_id}/") == {}, timeout=30)


def test_a_job_reads_its_file_and_keeps_its_output_in_the_bucket(server, s3):
    w = server.client()
    path = f"/Users/{w.current_user.me().user_name}/jobs/hello.py"
    put_file(w, path, "print('hello from', 'a job')\n")
    run = w.jobs.submit_and_wait(run_name="on-s3", timeout=datetime.timedelta(minutes=3), tasks=[
        jobs.SubmitTask(task_key="hello", spark_python_task=jobs.SparkPythonTask(python_file=path))])
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    task_run = run.tasks[0].run_id
    assert "hello from a job" in w.jobs.get_run_output(task_run).logs
    assert b"hello from a job" in s3.read(f"ws/jobs/runs/{task_run}.log")
    assert files_under(server.home / "jobs" / "runs") == []


def test_no_log_holds_the_secret(server, s3):
    """Last in the module: everything above has logged what it logs."""
    logs = files_under(server.home) + [s3.log]
    assert any(p.name == "serve.log" for p in logs)
    leaking = [str(p) for p in logs if s3.secret.encode() in p.read_bytes()]
    assert leaking == []
