"""The `mlflow` client with the `databricks` tracking URI and tarn's host
and token, as code written for Databricks runs: an experiment named by a
workspace path keeps its artifacts at Databricks' location (reached through
the Files API), and the workspace model registry serves versions through
`list-artifacts` and signed download URLs."""

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient

from test_mlflow import unique


@pytest.fixture
def databricks(tarn, monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", tarn.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", tarn.token)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    mlflow.set_tracking_uri("databricks")
    # As on Databricks, the default registry there is Unity Catalog's; the
    # workspace registry is the one tarn serves.
    mlflow.set_registry_uri("databricks")
    yield MlflowClient()
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def test_tracking_artifacts_and_the_workspace_registry(databricks, tarn, tmp_path):
    from sklearn.linear_model import LogisticRegression

    client = databricks
    name = f"/Users/admin/{unique('dbx')}"
    mlflow.set_experiment(name)
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("loss", 0.25, step=3)
        mlflow.log_text("trained", "notes/summary.txt")
        info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="clf", input_example=X[:2])

    experiment = client.get_experiment_by_name(name)
    assert experiment.artifact_location == f"dbfs:/databricks/mlflow-tracking/{experiment.experiment_id}"
    assert run.info.artifact_uri.startswith("dbfs:/databricks/mlflow-tracking/")
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.25}
    assert [f.path for f in client.list_artifacts(run.info.run_id, "notes")] == ["notes/summary.txt"]
    assert open(client.download_artifacts(run.info.run_id, "notes/summary.txt", str(tmp_path))).read() == "trained"
    model = client.get_logged_model(info.model_id)
    assert "/logged_models/" in model.artifact_location
    assert "MLmodel" in [f.path for f in client.list_logged_model_artifacts(info.model_id)]

    model_name = unique("dbx_model")
    version = mlflow.register_model(info.model_uri, model_name)
    client.transition_model_version_stage(model_name, version.version, "Production")
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/Production")
    assert list(loaded.predict(X)) == [0, 1, 0, 1]

    # The signed URL works without a token, for one file, and not for another path.
    signed = requests.get(
        f"{tarn.url}/api/2.0/mlflow/model-versions/get-signed-download-uri",
        params={"name": model_name, "version": version.version, "path": "MLmodel"},
        headers={"Authorization": f"Bearer {tarn.token}"},
        timeout=30,
    ).json()["signed_uri"]
    assert b"flavors" in requests.get(signed, timeout=30).content
    assert requests.get(signed[:-4] + "0000", timeout=30).status_code == 404
