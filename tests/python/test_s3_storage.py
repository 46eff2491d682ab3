"""Storage on an S3-compatible object store (`TARN_STORAGE_ROOT=s3://…`)
against moto's server: DBFS through databricks-sdk, MLflow artifacts and a
served model through mlflow, a context's dbutils. The bytes land in the
bucket and nothing under TARN_HOME; user code never sees the credentials,
and no log holds the secret."""

import io
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from databricks.sdk.errors import ResourceAlreadyExists
from databricks.sdk.service.compute import Language
from databricks.sdk.service.serving import DataframeSplitInput, EndpointCoreConfigInput, ServedEntityInput

from conftest import S3Server, own_server
from test_contexts import Context


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("moto") / "access.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(s3):
    yield from own_server("tarn-s3-", s3.env)


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

    # The model server reads a local copy of the model's directory.
    w = server.client()
    w.serving_endpoints.create_and_wait(
        name="ep-s3",
        config=EndpointCoreConfigInput(
            name="ep-s3", served_entities=[ServedEntityInput(entity_name="s3_model", entity_version=version,
                                                             workload_size="Small", scale_to_zero_enabled=False)]),
    )
    rows = [[1.0, 2.0], [4.0, 0.0]]
    answer = w.serving_endpoints.query("ep-s3", dataframe_split=DataframeSplitInput(columns=["a", "b"], data=rows))
    expected = local.predict(pd.DataFrame(rows, columns=["a", "b"]))
    assert answer.predictions == [pytest.approx(p) for p in expected]
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


def test_no_log_holds_the_secret(server, s3):
    """Last in the module: everything above has logged what it logs."""
    logs = files_under(server.home) + [s3.log]
    assert any(p.name == "serve.log" for p in logs)
    leaking = [str(p) for p in logs if s3.secret.encode() in p.read_bytes()]
    assert leaking == []
