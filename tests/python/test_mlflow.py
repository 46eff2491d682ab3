"""The MLflow tracking server in tarn, driven by the `mlflow` client (3.17.2):
the fluent API and MlflowClient for experiments, runs, metrics, params,
tags, artifacts and logged models; search grammar and pagination; errors;
concurrent loggers; a restart."""

import math
import multiprocessing
import os
import time
import uuid

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def use_server(url):
    """Points the client at `url` for tracking and the registry. The registry
    URI is set too: unset, mlflow asks the active Spark session (which
    other test modules leave behind) for one."""
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    os.environ["MLFLOW_REGISTRY_URI"] = url


@pytest.fixture
def client(tarn):
    # tarn serves MLflow calls without a token on loopback, like `mlflow server`.
    use_server(tarn.url)
    yield MlflowClient(tarn.url)
    mlflow.set_tracking_uri(None)


def error_code(excinfo):
    return excinfo.value.error_code


def test_fluent_run_with_artifacts_and_a_logged_model(client, tmp_path):
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment(unique("fluent"))
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    with mlflow.start_run(run_name="train") as run:
        mlflow.log_params({"C": 1.0, "solver": "lbfgs"})
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.set_tags({"team": "risk", "stage": "dev"})
        mlflow.log_text("trained on 4 rows", "notes/summary.txt")
        mlflow.log_image(np.zeros((8, 8, 3), dtype=np.uint8), "plots/blank.png")
        model = LogisticRegression().fit(X, y)
        info = mlflow.sklearn.log_model(model, name="clf", input_example=X[:2])
        mlflow.log_metric("accuracy", 1.0, model_id=info.model_id)

    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "train"
    assert got.data.params == {"C": "1.0", "solver": "lbfgs"}
    assert got.data.metrics["loss"] == 0.3
    assert {"team": "risk", "stage": "dev"}.items() <= got.data.tags.items()
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [0.9, 0.5, 0.3]
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["notes", "plots"]
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/summary.txt") == "trained on 4 rows"
    assert [a.path for a in client.list_artifacts(run.info.run_id, "plots")] == ["plots/blank.png"]

    assert list(mlflow.pyfunc.load_model(info.model_uri).predict(X)) == list(y)
    assert list(mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/clf").predict(X)) == list(y)
    logged = mlflow.get_logged_model(info.model_id)
    assert logged.status.name == "READY" and logged.source_run_id == run.info.run_id
    # The client links the run's step-0 metrics to the model it logs at step 0.
    assert sorted((m.key, m.value) for m in logged.metrics) == [("accuracy", 1.0), ("loss", 0.9)]
    found = mlflow.search_logged_models(filter_string="metrics.accuracy > 0.5", output_format="list")
    assert info.model_id in [m.model_id for m in found]
    assert [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs] == [info.model_id]


def test_experiments_lifecycle_search_and_errors(client):
    name = unique("exp")
    exp_id = client.create_experiment(name, tags={"owner": "ana"})
    assert client.get_experiment_by_name(name).experiment_id == exp_id
    with pytest.raises(MlflowException) as e:
        client.create_experiment(name)
    assert error_code(e) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as e:
        client.get_experiment("987654")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_experiment("0").name == "Default"

    client.rename_experiment(exp_id, name + "-renamed")
    client.set_experiment_tag(exp_id, "team", "fraud")
    client.delete_experiment_tag(exp_id, "owner")
    assert client.get_experiment(exp_id).tags == {"team": "fraud"}
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    hits = client.search_experiments(filter_string=f"name = '{name}-renamed'")
    assert hits == []
    deleted = client.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert exp_id in [x.experiment_id for x in deleted]
    client.restore_experiment(exp_id)
    hits = client.search_experiments(filter_string=f"name LIKE '{name}%' and tags.team = 'fraud'")
    assert [x.experiment_id for x in hits] == [exp_id]

    prefix = unique("page")
    ids = [client.create_experiment(f"{prefix}-{i}") for i in range(5)]
    first = client.search_experiments(filter_string=f"name LIKE '{prefix}%'", max_results=2, order_by=["name"])
    assert [x.name for x in first] == [f"{prefix}-0", f"{prefix}-1"] and first.token
    rest = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%'", max_results=10, order_by=["name"], page_token=first.token
    )
    assert [x.experiment_id for x in rest] == ids[2:] and not rest.token


def test_runs_search_lifecycle_and_bad_input(client, tarn):
    exp_id = client.create_experiment(unique("search"))
    runs = []
    for i, (model, acc) in enumerate([("cnn", 0.91), ("rf", 0.85), ("cnn", 0.70), ("svm", 0.99)]):
        run = client.create_run(exp_id, run_name=f"r{i}", tags={"team": "ml-core" if i % 2 == 0 else "ml-edge"})
        client.log_param(run.info.run_id, "model", model)
        client.log_metric(run.info.run_id, "acc", acc)
        client.set_terminated(run.info.run_id, "FINISHED" if i != 2 else "FAILED")
        runs.append(run.info.run_id)

    def names(**kw):
        return [r.info.run_name for r in client.search_runs([exp_id], **kw)]

    assert names(filter_string="metrics.acc > 0.8 and params.model = 'cnn'") == ["r0"]
    assert names(filter_string="tags.team LIKE 'ml-c%'", order_by=["metrics.acc DESC"]) == ["r0", "r2"]
    assert names(filter_string="tags.team ILIKE 'ML-EDGE'", order_by=["metrics.acc ASC"]) == ["r1", "r3"]
    assert names(filter_string="attributes.status = 'FAILED'") == ["r2"]
    assert names(order_by=["metrics.acc DESC"]) == ["r3", "r0", "r1", "r2"]
    page = client.search_runs([exp_id], max_results=3, order_by=["attributes.run_name"])
    assert [r.info.run_name for r in page] == ["r0", "r1", "r2"] and page.token
    tail = client.search_runs([exp_id], max_results=3, order_by=["attributes.run_name"], page_token=page.token)
    assert [r.info.run_name for r in tail] == ["r3"]
    with pytest.raises(MlflowException) as e:
        client.search_runs([exp_id], filter_string="metrics.acc > 'high'")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"

    client.delete_run(runs[0])
    assert "r0" not in names()
    deleted = client.search_runs([exp_id], run_view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert [r.info.run_name for r in deleted] == ["r0"]
    with pytest.raises(MlflowException) as e:
        client.log_metric(runs[0], "acc", 1.0)
    assert error_code(e) == "INVALID_PARAMETER_VALUE"
    client.restore_run(runs[0])
    assert "r0" in names()

    # Params are write-once; NaN and infinities are stored as MLflow stores them.
    with pytest.raises(MlflowException) as e:
        client.log_param(runs[1], "model", "something-else")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"
    run = runs[1]
    client.log_metric(run, "odd", float("nan"))
    client.log_metric(run, "huge", float("inf"))
    client.log_metric(run, "tiny", float("-inf"))
    metrics = client.get_run(run).data.metrics
    assert math.isnan(metrics["odd"]) and metrics["huge"] == 1.7976931348623157e308
    assert metrics["tiny"] == -1.7976931348623157e308
    with pytest.raises(MlflowException) as e:
        client.get_run("0" * 32)
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"

    # The server's own limits, as a client that skips validation meets them.
    big = requests.post(
        f"{tarn.url}/api/2.0/mlflow/runs/log-parameter",
        json={"run_id": run, "key": "blob", "value": "x" * (10 << 20)},
        timeout=60,
    )
    assert big.status_code == 400 and big.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    escape = requests.put(
        f"{tarn.url}/api/2.0/mlflow-artifacts/artifacts/{exp_id}/%2E%2E/%2E%2E/escape.txt", data=b"x", timeout=30
    )
    assert escape.status_code == 400 and escape.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not (tarn.home / "escape.txt").exists() and not (tarn.home / "artifacts" / "escape.txt").exists()
    assert "blob" not in client.get_run(run).data.params


def _log_from_process(url, run_id, worker):
    client = MlflowClient(url, registry_uri=url)
    for step in range(50):
        client.log_metric(run_id, "shared", float(worker * 1000 + step), step=step)
        client.log_batch(run_id, metrics=[mlflow.entities.Metric(f"w{worker}", step, int(time.time() * 1000), step)])


def test_eight_processes_log_to_one_run(client, tarn, monkeypatch):
    import pyspark

    # mlflow's Databricks checks import pyspark.testing, which exits a process
    # with pyspark-client but no SPARK_HOME (see docs/mlflow.md).
    monkeypatch.setenv("SPARK_HOME", os.path.dirname(pyspark.__file__))
    run = client.create_run(client.create_experiment(unique("concurrent")))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_log_from_process, args=(tarn.url, run.info.run_id, w)) for w in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
        assert w.exitcode == 0
    history = client.get_metric_history(run.info.run_id, "shared")
    assert len(history) == 400
    data = client.get_run(run.info.run_id).data.metrics
    assert all(data[f"w{w}"] == 49 for w in range(8))


def test_everything_survives_a_restart(tmp_home):
    from conftest import Tarn

    server = Tarn(tmp_home).start()
    try:
        use_server(server.url)
        mlflow.set_experiment("durable")
        with mlflow.start_run() as run:
            mlflow.log_param("p", "v")
            mlflow.log_metric("m", 1.5, step=3)
            mlflow.log_text("kept", "a.txt")
    finally:
        server.stop()
    server = Tarn(tmp_home).start()
    try:
        use_server(server.url)
        client = MlflowClient(server.url)
        got = client.get_run(run.info.run_id)
        assert got.data.params == {"p": "v"} and got.data.metrics == {"m": 1.5}
        assert [m.step for m in client.get_metric_history(run.info.run_id, "m")] == [3]
        assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/a.txt") == "kept"
    finally:
        mlflow.set_tracking_uri(None)
        server.stop()


def test_tokens_when_anonymous_access_is_off(tmp_home):
    from conftest import Tarn

    server = Tarn(tmp_home, {"TARN_MLFLOW_ANONYMOUS": "false"}).start()
    try:
        use_server(server.url)
        denied = requests.get(f"{server.url}/api/2.0/mlflow/experiments/get?experiment_id=0", timeout=30)
        assert denied.status_code == 401
        os.environ["MLFLOW_TRACKING_TOKEN"] = server.token
        try:
            assert MlflowClient(server.url).get_experiment("0").name == "Default"
        finally:
            del os.environ["MLFLOW_TRACKING_TOKEN"]
        with pytest.raises(RestException):
            MlflowClient(server.url).get_experiment("0")
    finally:
        server.stop()


def test_model_registry(client):
    from sklearn.linear_model import LinearRegression

    name = unique("regmodel")
    mlflow.set_experiment(unique("registry"))
    X = np.array([[1.0], [2.0], [3.0]])
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(LinearRegression().fit(X, 2 * X[:, 0]), name="reg", input_example=X[:1])
    v1 = mlflow.register_model(info.model_uri, name)
    v2 = mlflow.register_model(f"runs:/{run.info.run_id}/reg", name)
    assert (v1.version, v2.version) == ("1", "2") and v1.status == "READY"
    with pytest.raises(MlflowException) as e:
        client.create_registered_model(name)
    assert error_code(e) == "RESOURCE_ALREADY_EXISTS"

    client.set_registered_model_alias(name, "champion", v1.version)
    champion = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert [round(float(p), 6) for p in champion.predict(np.array([[5.0]]))] == [10.0]
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert mlflow.pyfunc.load_model(f"models:/{name}/2").predict(np.array([[1.0]]))[0] == pytest.approx(2.0)
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias(name, "latest", "1")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"

    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{name}'")}
    assert stages == {"1": "Archived", "2": "Production"}
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]
    assert mlflow.pyfunc.load_model(f"models:/{name}/Production").predict(np.array([[2.0]]))[0] == pytest.approx(4.0)

    client.set_registered_model_tag(name, "domain", "pricing")
    client.set_model_version_tag(name, "2", "validated", "yes")
    client.update_model_version(name, "2", description="second fit")
    got = client.get_registered_model(name)
    assert got.tags == {"domain": "pricing"} and got.aliases == {"champion": "1"}
    assert client.get_model_version(name, "2").tags == {"validated": "yes"}
    assert client.get_model_version(name, "2").description == "second fit"
    assert [m.name for m in client.search_registered_models(filter_string=f"name LIKE '{name[:12]}%'")] == [name]

    renamed = name + "-v2"
    client.rename_registered_model(name, renamed)
    assert client.get_model_version_by_alias(renamed, "champion").version == "1"
    client.delete_registered_model_alias(renamed, "champion")
    client.delete_model_version(renamed, "1")
    with pytest.raises(MlflowException) as e:
        client.get_model_version(renamed, "1")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model(renamed)
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(renamed)
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
