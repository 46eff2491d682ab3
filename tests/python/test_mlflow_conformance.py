"""The corners of tarn's MLflow server the main flows do not reach, driven
through the `mlflow` client where it has a call and as it calls the server
otherwise: multipart artifact uploads, artifact listings, bulk metric
history, the run's logged-model history, IS NULL filters, run names set as
tags, and what tarn does not implement."""

import hashlib
import json
import os

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

from test_mlflow import unique, use_server


@pytest.fixture
def client(tarn):
    use_server(tarn.url)
    yield MlflowClient(tarn.url)
    mlflow.set_tracking_uri(None)


def test_large_artifacts_go_up_in_parts(client, tarn, tmp_path, monkeypatch):
    # The client goes multipart above a size (500 MB by default) when the
    # server says it can; lower the bar so a few MiB take four parts.
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 << 20))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(1 << 20))
    parts = []
    real_upload_part = HttpArtifactRepository._upload_part

    def counting_upload_part(credential, local_file, size, start_byte):
        parts.append(credential.part_number)
        return real_upload_part(credential, local_file, size, start_byte)

    monkeypatch.setattr(HttpArtifactRepository, "_upload_part", staticmethod(counting_upload_part))
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom((3 << 20) + 12345))
    exp_id = client.create_experiment(unique("multipart"))
    run = client.create_run(exp_id)
    client.log_artifact(run.info.run_id, str(big), "model")

    assert sorted(parts) == [1, 2, 3, 4]
    listed = client.list_artifacts(run.info.run_id, "model")
    assert [(f.path, f.file_size) for f in listed] == [("model/weights.bin", big.stat().st_size)]
    back = client.download_artifacts(run.info.run_id, "model/weights.bin", str(tmp_path / "back"))
    assert hashlib.sha256(open(back, "rb").read()).digest() == hashlib.sha256(big.read_bytes()).digest()
    assert list((tarn.home / "artifact-uploads").iterdir()) == []


def test_multipart_abort_and_bad_parts(client, tarn):
    exp_id = client.create_experiment(unique("mpu-abort"))
    base = f"{tarn.url}/api/2.0/mlflow-artifacts/mpu"
    created = requests.post(f"{base}/create/{exp_id}/x", json={"path": "/tmp/a.bin", "num_parts": 2}, timeout=30)
    assert created.status_code == 200, created.text
    upload = created.json()
    first = upload["credentials"][0]
    put = requests.put(first["url"], data=b"first part", timeout=30)
    assert put.status_code == 200 and put.headers["ETag"]

    # A part that was never sent, or an ETag that does not match, completes nothing.
    missing = requests.post(
        f"{base}/complete/{exp_id}/x",
        json={"path": "/tmp/a.bin", "upload_id": upload["upload_id"], "parts": [{"part_number": 2, "etag": ""}]},
        timeout=30,
    )
    assert missing.status_code == 400 and missing.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    wrong = requests.post(
        f"{base}/complete/{exp_id}/x",
        json={"path": "/tmp/a.bin", "upload_id": upload["upload_id"], "parts": [{"part_number": 1, "etag": "0f"}]},
        timeout=30,
    )
    assert wrong.status_code == 400
    aborted = requests.post(
        f"{base}/abort/{exp_id}/x", json={"path": "/tmp/a.bin", "upload_id": upload["upload_id"]}, timeout=30
    )
    assert aborted.status_code == 200
    assert requests.put(first["url"], data=b"late", timeout=30).status_code == 404
    assert requests.get(f"{tarn.url}/api/2.0/mlflow-artifacts/artifacts/{exp_id}/x/a.bin", timeout=30).status_code == 404

    escape = requests.post(f"{base}/create/{exp_id}/%2E%2E/%2E%2E", json={"path": "a", "num_parts": 1}, timeout=30)
    assert escape.status_code == 400
    forged = requests.put(f"{base}/parts/{'0' * 48}/1", data=b"x", timeout=30)
    assert forged.status_code == 404 and forged.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_artifact_listings_of_runs_and_logged_models(client, tarn):
    exp_id = client.create_experiment(unique("listing"))
    run = client.create_run(exp_id)
    client.log_text(run.info.run_id, "hello", "notes/a.txt")
    client.log_text(run.info.run_id, "world", "top.txt")
    listed = requests.get(
        f"{tarn.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id, "path": "notes"}, timeout=30
    ).json()
    assert listed["root_uri"] == run.info.artifact_uri
    assert listed["files"] == [{"path": "notes/a.txt", "is_dir": False, "file_size": 5}]
    root = requests.get(f"{tarn.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id}, timeout=30)
    assert sorted((f["path"], f["is_dir"]) for f in root.json()["files"]) == [("notes", True), ("top.txt", False)]

    model = client.create_logged_model(exp_id, name="m")
    client.log_model_artifacts(model.model_id, str(_write_dir(tarn.home.parent / unique("model-files"))))
    files = client.list_logged_model_artifacts(model.model_id)
    assert sorted(f.path for f in files) == ["MLmodel", "conf"]
    directories = requests.get(
        f"{tarn.url}/api/2.0/mlflow/logged-models/{model.model_id}/artifacts/directories",
        params={"artifact_directory_path": "conf"},
        timeout=30,
    ).json()
    assert directories["root_uri"] == model.artifact_location
    assert [f["path"] for f in directories["files"]] == ["conf/config.json"]


def _write_dir(path):
    (path / "conf").mkdir(parents=True)
    (path / "MLmodel").write_text("flavors: {}\n")
    (path / "conf" / "config.json").write_text('{"a": 1}')
    return path


def test_bulk_metric_history_is_sampled_per_run(client, tarn):
    exp_id = client.create_experiment(unique("bulk"))
    runs = [client.create_run(exp_id).info.run_id for _ in range(2)]
    for i, run in enumerate(runs):
        client.log_batch(run, metrics=[Metric("loss", 1.0 / (s + 1) + i, 1000 + s, s) for s in range(10 + 5 * i)])

    def bulk(**params):
        answer = requests.get(
            f"{tarn.url}/api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={"run_ids": runs, "metric_key": "loss", **params},
            timeout=30,
        )
        return answer.status_code, answer.json()

    status, body = bulk(max_results=3)
    assert status == 200
    by_run = {run: [m["step"] for m in body["metrics"] if m["run_id"] == run] for run in runs}
    assert by_run == {runs[0]: [0, 4, 9], runs[1]: [0, 5, 14]}
    status, body = bulk(start_step=2, end_step=5)
    assert status == 200 and {m["step"] for m in body["metrics"]} == {2, 3, 4, 5}
    assert bulk(start_step=2)[1]["error_code"] == "INVALID_PARAMETER_VALUE"
    assert bulk(max_results=0)[1]["error_code"] == "INVALID_PARAMETER_VALUE"


def test_logged_model_history_null_filters_and_run_names(client):
    exp_id = client.create_experiment(unique("history"))
    run = client.create_run(exp_id, run_name="before").info.run_id
    for path in ["first", "second"]:
        client._record_logged_model(run, Model(artifact_path=path, run_id=run, flavors={"python_function": {}}))
    history = json.loads(client.get_run(run).data.tags["mlflow.log-model.history"])
    assert [m["artifact_path"] for m in history] == ["first", "second"]

    other = client.create_run(exp_id, run_name="other").info.run_id
    client.log_param(other, "lr", "0.1")
    client.set_tag(other, "reviewed", "yes")

    def names(filter_string):
        return sorted(r.info.run_name for r in client.search_runs([exp_id], filter_string))

    assert names("tags.reviewed IS NULL") == ["before"]
    assert names("params.lr IS NOT NULL and tags.reviewed IS NOT NULL") == ["other"]
    with pytest.raises(MlflowException):
        client.search_runs([exp_id], "metrics.acc IS NULL")

    # The run's name follows its mlflow.runName tag, set alone or in a batch.
    client.set_tag(run, "mlflow.runName", "renamed")
    assert client.get_run(run).info.run_name == "renamed"
    client.log_batch(run, tags=[RunTag("mlflow.runName", "batched")])
    assert client.get_run(run).info.run_name == "batched"
    assert names("attributes.run_name = 'batched'") == ["batched"]


def test_what_tarn_does_not_serve_says_so(tarn):
    answer = requests.post(f"{tarn.url}/api/3.0/mlflow/traces/search", json={}, timeout=30)
    assert answer.status_code == 501 and answer.json()["error_code"] == "NOT_IMPLEMENTED"
    info = requests.get(f"{tarn.url}/api/3.0/mlflow/server-info", timeout=30).json()
    assert info["multipart_uploads_enabled"] is True
