"""Model Serving through `databricks-sdk`'s `w.serving_endpoints`,
`mlflow.deployments` and `requests`: registered sklearn models behind
endpoints, answered as MLflow's scoring server answers, traffic split
between versions, configs rolled over under load without a failed request,
a config that cannot build failing alone, and scale to zero."""

import json
import re
import signal
import threading
import time
from collections import Counter

import mlflow
import mlflow.deployments
import numpy as np
import pandas as pd
import pytest
import requests
from databricks.sdk.errors import InvalidParameterValue, NotFound, ResourceConflict
from databricks.sdk.service.serving import (
    AiGatewayConfig,
    AiGatewayInferenceTableConfig,
    AutoCaptureConfigInput,
    DataframeSplitInput,
    EndpointCoreConfigInput,
    EndpointStateConfigUpdate,
    EndpointStateReady,
    Route,
    ServedEntityInput,
    TrafficConfig,
)

from conftest import Tarn, wait_for
from test_pipelines import sql_rows

COLUMNS = ["a", "b"]
ROWS = [[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Scale-to-zero entities stop after 3 idle seconds here.
    env = {"TARN_SERVING_IDLE_SECONDS": "3", "TARN_INFERENCE_FLUSH_MS": "500"}
    server = Tarn(tmp_path_factory.mktemp("serving"), env).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def models(server):
    """Two versions of a registered linear model and a version whose
    requirements cannot be installed, logged through the `databricks` URI."""
    from sklearn.linear_model import LinearRegression

    mp = pytest.MonkeyPatch()
    mp.setenv("DATABRICKS_HOST", server.url)
    mp.setenv("DATABRICKS_TOKEN", server.token)
    mlflow.set_tracking_uri("databricks")
    mlflow.set_registry_uri("databricks")
    mlflow.set_experiment("/Users/admin/serving")
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 7})
    name = "serve_model"
    local = {}
    for version, target in [("1", 3 * X.a + X.b), ("2", 10 * X.a)]:
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(LinearRegression().fit(X, target), name="m", input_example=X.head(2))
        mlflow.register_model(info.model_uri, name)
        local[version] = mlflow.pyfunc.load_model(info.model_uri)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            LinearRegression().fit(X, X.a),
            name="m",
            input_example=X.head(2),
            extra_pip_requirements=["tarn-no-such-package==0.0.1"],
        )
    mlflow.register_model(info.model_uri, name)
    yield name, local
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    mp.undo()


def entity(model, version, name=None, size="Small", scale_to_zero=False):
    return ServedEntityInput(
        name=name,
        entity_name=model,
        entity_version=version,
        workload_size=size,
        scale_to_zero_enabled=scale_to_zero,
    )


def scoring_server_answer(model, body: dict) -> tuple[int, dict]:
    """What MLflow's own scoring code answers for `body`, in this process."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    try:
        result = scoring_server.invocations(json.dumps(body), "application/json", model, model.metadata.get_input_schema())
        return result.status, json.loads(result.response)
    except MlflowException as e:
        return e.get_http_status_code(), json.loads(e.serialize_as_json())


def unordered(answer: dict) -> dict:
    """MLflow names extra inputs in set order, which differs between processes."""
    if "message" in answer:
        answer = dict(answer)
        answer["message"] = re.sub(r"extra inputs: \[(.*?)\]", lambda m: str(sorted(m.group(1).split(", "))), answer["message"])
    return answer


def invoke(server, endpoint, body, **kw):
    return server.raw("POST", f"/serving-endpoints/{endpoint}/invocations", json=body, **kw)


def test_an_endpoint_answers_every_format_as_mlflow_does(server, models):
    model, local = models
    w = server.client()
    created = w.serving_endpoints.create_and_wait(
        name="ep-formats",
        config=EndpointCoreConfigInput(name="ep-formats", served_entities=[entity(model, "1")]),
    )
    assert created.state.ready == EndpointStateReady.READY
    assert created.state.config_update == EndpointStateConfigUpdate.NOT_UPDATING
    served = created.config.served_entities[0]
    assert served.name == f"{model}-1"
    assert served.state.deployment.value == "DEPLOYMENT_READY"
    assert created.pending_config is None

    frame = pd.DataFrame(ROWS, columns=COLUMNS)
    expected = [pytest.approx(p) for p in local["1"].predict(frame)]
    answer = w.serving_endpoints.query("ep-formats", dataframe_split=DataframeSplitInput(columns=COLUMNS, data=ROWS))
    assert answer.predictions == expected
    assert answer.served_model_name == f"{model}-1"

    bodies = [
        {"dataframe_split": {"columns": COLUMNS, "data": ROWS}},
        {"dataframe_records": frame.to_dict(orient="records")},
        {"instances": frame.to_dict(orient="records")},
        {"inputs": {"a": [r[0] for r in ROWS], "b": [r[1] for r in ROWS]}},
        {"dataframe_split": {"columns": ["x", "y"], "data": ROWS}},
        {"dataframe_split": {"columns": COLUMNS, "data": [["one", 2.0]]}},
    ]
    for body in bodies:
        got = invoke(server, "ep-formats", body)
        status, want = scoring_server_answer(local["1"], body)
        assert (got.status_code, unordered(got.json())) == (status, unordered(want)), body
        assert got.headers["served-model-name"] == f"{model}-1"
    missing = invoke(server, "ep-formats", {"dataframe_split": {"columns": ["x", "y"], "data": ROWS}}).json()
    assert "Model is missing inputs" in missing["message"]
    malformed = server.raw("POST", "/serving-endpoints/ep-formats/invocations", data="{oops",
                           headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error_code"] == "BAD_REQUEST"

    client = mlflow.deployments.get_deploy_client("databricks")
    mp = pytest.MonkeyPatch()
    mp.setenv("DATABRICKS_HOST", server.url)
    mp.setenv("DATABRICKS_TOKEN", server.token)
    try:
        predicted = client.predict(endpoint="ep-formats", inputs={"dataframe_split": {"columns": COLUMNS, "data": ROWS}})
        assert predicted["predictions"] == expected
        assert client.get_endpoint("ep-formats")["state"]["ready"] == "READY"
        assert "ep-formats" in [e["name"] for e in client.list_endpoints()]
    finally:
        mp.undo()

    assert "ep-formats" in [e.name for e in w.serving_endpoints.list()]
    assert "Ready: the model answered" in w.serving_endpoints.build_logs("ep-formats", f"{model}-1").logs
    assert f"{model}-1" in w.serving_endpoints.export_metrics("ep-formats").contents.read().decode()
    assert "/invocations" in json.loads(w.serving_endpoints.get_open_api("ep-formats").contents.read())["paths"]
    assert invoke(server, "ep-formats", bodies[0], token=False).status_code == 401
    assert invoke(server, "nope", bodies[0]).status_code == 404
    with pytest.raises(NotFound):
        w.serving_endpoints.get("nope")

    w.serving_endpoints.delete("ep-formats")
    with pytest.raises(NotFound):
        w.serving_endpoints.get("ep-formats")
    assert invoke(server, "ep-formats", bodies[0]).status_code == 404


def test_concurrent_requests_get_their_own_answers(server, models):
    """Requests arriving together share one predict in a worker; each must
    still get exactly its own rows' predictions, and a bad one its own error."""
    from concurrent.futures import ThreadPoolExecutor

    model, local = models
    w = server.client()
    w.serving_endpoints.create_and_wait(
        name="ep-batch", config=EndpointCoreConfigInput(name="ep-batch", served_entities=[entity(model, "2")])
    )
    rng = np.random.default_rng(3)
    bodies = []
    for i in range(96):
        rows = rng.normal(size=(1 + i % 3, 2)).round(3).tolist()
        if i % 2:
            bodies.append({"dataframe_split": {"columns": COLUMNS, "data": rows}})
        else:
            bodies.append({"dataframe_records": [dict(zip(COLUMNS, r)) for r in rows]})
    bodies[17] = {"dataframe_split": {"columns": COLUMNS, "data": [["bad", 1.0]]}}
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda b: invoke(server, "ep-batch", b), bodies))
    for body, got in zip(bodies, answers):
        status, want = scoring_server_answer(local["2"], body)
        if status == 200:
            # A batched matrix product may differ from a single one in the last bit.
            assert got.status_code == 200 and got.json()["predictions"] == pytest.approx(want["predictions"]), body
        else:
            assert (got.status_code, unordered(got.json())) == (status, unordered(want)), body
    assert answers[17].status_code == 400
    w.serving_endpoints.delete("ep-batch")


def test_tags_and_refusals(server, models):
    from databricks.sdk.service.serving import EndpointTag

    model, _ = models
    w = server.client()
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        w.serving_endpoints.create(
            name="ep-missing", config=EndpointCoreConfigInput(name="ep-missing", served_entities=[entity(model, "99")])
        )
    with pytest.raises(InvalidParameterValue, match="add up to 90"):
        w.serving_endpoints.create(
            name="ep-routes",
            config=EndpointCoreConfigInput(
                name="ep-routes",
                served_entities=[entity(model, "1", name="a")],
                traffic_config=TrafficConfig(routes=[Route(served_model_name="a", traffic_percentage=90)]),
            ),
        )
    w.serving_endpoints.create(
        name="ep-tags",
        config=EndpointCoreConfigInput(name="ep-tags", served_entities=[entity(model, "1")]),
        tags=[EndpointTag(key="team", value="ml")],
    ).result()
    tags = w.serving_endpoints.patch("ep-tags", add_tags=[EndpointTag(key="stage", value="dev")], delete_tags=["team"])
    assert [(t.key, t.value) for t in tags.tags] == [("stage", "dev")]
    assert [(t.key, t.value) for t in w.serving_endpoints.get("ep-tags").tags] == [("stage", "dev")]
    w.serving_endpoints.delete("ep-tags")


class Load:
    """Clients sending requests in a loop, recording every answer."""

    def __init__(self, server, endpoint, clients=4):
        self.server, self.endpoint = server, endpoint
        self.answers = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(clients)]

    def run(self):
        session = requests.Session()
        body = {"dataframe_split": {"columns": COLUMNS, "data": [ROWS[0]]}}
        headers = {"Authorization": f"Bearer {self.server.token}"}
        while not self.stop.is_set():
            r = session.post(f"{self.server.url}/serving-endpoints/{self.endpoint}/invocations",
                             json=body, headers=headers, timeout=60)
            self.answers.append((r.status_code, r.headers.get("served-model-name"), r.text))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def test_traffic_split_and_rollover_under_load(server, models):
    model, local = models
    w = server.client()
    w.serving_endpoints.create_and_wait(
        name="ep-roll", config=EndpointCoreConfigInput(name="ep-roll", served_entities=[entity(model, "1", name="a")])
    )
    split = EndpointCoreConfigInput(
        name="ep-roll",
        served_entities=[entity(model, "1", name="a"), entity(model, "2", name="b")],
        traffic_config=TrafficConfig(
            routes=[Route(served_model_name="a", traffic_percentage=70), Route(served_model_name="b", traffic_percentage=30)]
        ),
    )
    with Load(server, "ep-roll") as load:
        waiter = w.serving_endpoints.update_config(
            "ep-roll", served_entities=split.served_entities, traffic_config=split.traffic_config
        )
        # A second update while one is in progress is refused.
        with pytest.raises(ResourceConflict):
            w.serving_endpoints.update_config("ep-roll", served_entities=[entity(model, "2", name="b")])
        updated = waiter.result()
    assert updated.config.config_version == 2
    assert load.answers and all(status == 200 for status, _, _ in load.answers), load.answers[:5]

    served = Counter(invoke(server, "ep-roll", {"dataframe_split": {"columns": COLUMNS, "data": [ROWS[0]]}})
                     .headers["served-model-name"] for _ in range(200))
    assert set(served) == {"a", "b"}
    assert 105 <= served["a"] <= 175, served

    # A config naming a missing version is refused; the live one still serves.
    with pytest.raises(InvalidParameterValue):
        w.serving_endpoints.update_config("ep-roll", served_entities=[entity(model, "42", name="c")])
    assert w.serving_endpoints.get("ep-roll").state.config_update == EndpointStateConfigUpdate.NOT_UPDATING

    with Load(server, "ep-roll") as load:
        w.serving_endpoints.update_config_and_wait("ep-roll", served_entities=[entity(model, "2", name="b")])
        time.sleep(0.5)
    assert all(status == 200 for status, _, _ in load.answers), [a for a in load.answers if a[0] != 200][:5]
    last = load.answers[-1]
    assert last[1] == "b"
    want = local["2"].predict(pd.DataFrame([ROWS[0]], columns=COLUMNS))[0]
    assert json.loads(last[2])["predictions"][0] == pytest.approx(want)
    w.serving_endpoints.delete("ep-roll")


def test_a_config_that_cannot_build_fails_with_its_log_and_the_old_one_serves(server, models):
    model, _ = models
    w = server.client()
    w.serving_endpoints.create_and_wait(
        name="ep-fail", config=EndpointCoreConfigInput(name="ep-fail", served_entities=[entity(model, "1", name="a")])
    )
    w.serving_endpoints.update_config("ep-fail", served_entities=[entity(model, "3", name="broken")])
    endpoint = wait_for(
        lambda: (e := w.serving_endpoints.get("ep-fail")).state.config_update == EndpointStateConfigUpdate.UPDATE_FAILED and e,
        timeout=300,
    )
    assert endpoint.state.ready == EndpointStateReady.READY
    broken = endpoint.pending_config.served_entities[0]
    assert broken.state.deployment.value == "DEPLOYMENT_FAILED"
    assert "tarn-no-such-package" in broken.state.deployment_state_message
    assert "tarn-no-such-package" in w.serving_endpoints.build_logs("ep-fail", "broken").logs
    assert endpoint.config.served_entities[0].name == "a"
    r = invoke(server, "ep-fail", {"dataframe_split": {"columns": COLUMNS, "data": ROWS}})
    assert r.status_code == 200 and r.headers["served-model-name"] == "a"
    w.serving_endpoints.delete("ep-fail")


def worker_environments(server):
    """The environments of the serving workers this tarn started."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == server.proc.pid:
                found.append(dict(kv.split("=", 1) for kv in (proc / "environ").read_text().split("\0") if "=" in kv))
        except (OSError, ValueError, IndexError):
            pass
    return found


def test_environment_vars_take_secret_references(server, models):
    model, _ = models
    w = server.client()
    w.secrets.create_scope("serving")
    w.secrets.put_secret("serving", "api-key", string_value="k-123-not-for-eyes")
    refs = {"API_KEY": "{{secrets/serving/api-key}}", "PLAIN": "x"}
    served = ServedEntityInput(entity_name=model, entity_version="1", workload_size="Small", environment_vars=refs)
    w.serving_endpoints.create_and_wait(name="ep-secret",
                                        config=EndpointCoreConfigInput(name="ep-secret", served_entities=[served]))
    # The config keeps the reference; only the worker's environment has the value.
    assert w.serving_endpoints.get("ep-secret").config.served_entities[0].environment_vars == refs
    assert any(env.get("API_KEY") == "k-123-not-for-eyes" and env.get("PLAIN") == "x"
               for env in worker_environments(server))
    assert "k-123-not-for-eyes" not in json.dumps(w.serving_endpoints.get("ep-secret").as_dict())

    with pytest.raises(InvalidParameterValue, match="secret reference"):
        w.serving_endpoints.update_config("ep-secret", served_entities=[ServedEntityInput(
            entity_name=model, entity_version="1", workload_size="Small",
            environment_vars={"API_KEY": "{{secrets/serving}}"})])
    # A reference that does not resolve fails the new config alone.
    w.serving_endpoints.update_config("ep-secret", served_entities=[ServedEntityInput(
        entity_name=model, entity_version="1", workload_size="Small",
        environment_vars={"API_KEY": "{{secrets/serving/missing}}"})])
    endpoint = wait_for(
        lambda: (e := w.serving_endpoints.get("ep-secret")).state.config_update == EndpointStateConfigUpdate.UPDATE_FAILED and e,
        timeout=300,
    )
    message = endpoint.pending_config.served_entities[0].state.deployment_state_message
    assert "{{secrets/serving/missing}}" in message and "does not exist" in message
    assert endpoint.state.ready == EndpointStateReady.READY
    w.serving_endpoints.delete("ep-secret")


def test_endpoint_levels_guard_view_query_and_manage(server, models):
    from databricks.sdk.errors import PermissionDenied
    from databricks.sdk.service.serving import ServingEndpointAccessControlRequest, ServingEndpointPermissionLevel

    model, _ = models
    w = server.client()
    w.serving_endpoints.create_and_wait(name="ep-guarded",
                                        config=EndpointCoreConfigInput(name="ep-guarded", served_entities=[entity(model, "1")]))
    token = server.cli_token("hana@example.com")
    hana = server.client(token)
    body = {"dataframe_split": {"columns": COLUMNS, "data": ROWS}}
    with pytest.raises(PermissionDenied):
        hana.serving_endpoints.get("ep-guarded")
    assert "ep-guarded" not in [e.name for e in hana.serving_endpoints.list()]
    assert invoke(server, "ep-guarded", body, token=token).status_code == 403

    def grant(level):
        w.serving_endpoints.set_permissions("ep-guarded", access_control_list=[
            ServingEndpointAccessControlRequest(user_name="hana@example.com", permission_level=level)])

    grant(ServingEndpointPermissionLevel.CAN_VIEW)
    assert hana.serving_endpoints.get("ep-guarded").name == "ep-guarded"
    assert invoke(server, "ep-guarded", body, token=token).status_code == 403
    grant(ServingEndpointPermissionLevel.CAN_QUERY)
    r = invoke(server, "ep-guarded", body, token=token)
    assert r.status_code == 200 and len(r.json()["predictions"]) == len(ROWS)
    with pytest.raises(PermissionDenied):
        hana.serving_endpoints.delete("ep-guarded")
    grant(ServingEndpointPermissionLevel.CAN_MANAGE)
    hana.serving_endpoints.delete("ep-guarded")


def metric(text: str, family: str) -> float:
    for line in text.splitlines():
        if line.startswith(family + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{family} not in {text}")


def test_scale_to_zero_stops_idle_workers_and_the_next_request_starts_one(server, models):
    model, local = models
    w = server.client()
    w.serving_endpoints.create_and_wait(
        name="ep-zero",
        config=EndpointCoreConfigInput(name="ep-zero", served_entities=[entity(model, "1", scale_to_zero=True)]),
    )
    metrics = lambda: w.serving_endpoints.export_metrics("ep-zero").contents.read().decode()  # noqa: E731
    wait_for(lambda: metric(metrics(), "running_workers") == 0, timeout=30)
    assert w.serving_endpoints.get("ep-zero").state.ready == EndpointStateReady.READY

    began = time.monotonic()
    r = invoke(server, "ep-zero", {"dataframe_split": {"columns": COLUMNS, "data": ROWS}})
    cold = time.monotonic() - began
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [pytest.approx(p) for p in local["1"].predict(pd.DataFrame(ROWS, columns=COLUMNS))]
    text = metrics()
    assert metric(text, "cold_start_count_total") == 1
    assert metric(text, "running_workers") == 1
    print(f"cold start: {cold:.2f} s end to end, {metric(text, 'last_cold_start_duration_ms'):.0f} ms starting the worker")
    w.serving_endpoints.delete("ep-zero")


def gateway_table(prefix):
    return AiGatewayConfig(
        inference_table_config=AiGatewayInferenceTableConfig(
            catalog_name="main", schema_name="default", table_name_prefix=prefix, enabled=True
        )
    )


def test_requests_and_responses_land_in_the_inference_table(server, models):
    model, _ = models
    w = server.client()
    w.serving_endpoints.create_and_wait(
        name="ep-log",
        config=EndpointCoreConfigInput(name="ep-log", served_entities=[entity(model, "1", name="a")]),
        ai_gateway=gateway_table("ep_log"),
    )
    assert w.serving_endpoints.get("ep-log").ai_gateway.inference_table_config.table_name_prefix == "ep_log"
    split = {"dataframe_split": {"columns": COLUMNS, "data": [ROWS[0]]}}
    for _ in range(3):
        assert invoke(server, "ep-log", split).status_code == 200
    tagged = invoke(server, "ep-log", dict(split, client_request_id="cid-1"))
    assert tagged.status_code == 200, tagged.text
    assert invoke(server, "ep-log", {"dataframe_split": {"columns": ["x"], "data": [[1]]}}).status_code == 400

    table = "main.default.ep_log_payload"
    count = lambda: int(sql_rows(w, f"SELECT count(*) FROM {table}")[0][0])  # noqa: E731
    wait_for(lambda: count() == 5, timeout=60, interval=1)
    rows = sql_rows(
        w,
        f"SELECT status_code, client_request_id, served_entity_id, requester, request, response, "
        f"execution_duration_ms, CAST(request_date AS STRING), logging_error_codes FROM {table} ORDER BY request_time",
    )
    assert sorted(int(r[0]) for r in rows) == [200, 200, 200, 200, 400]
    assert [r[1] for r in rows if r[1]] == ["cid-1"]
    assert {r[2] for r in rows} == {"a"} and {r[3] for r in rows} == {"admin"}
    assert all("client_request_id" not in r[4] and "dataframe_split" in r[4] for r in rows)
    assert json.loads(rows[0][5])["predictions"]
    assert all(int(r[6]) >= 0 for r in rows) and rows[0][7] == time.strftime("%Y-%m-%d", time.gmtime())
    assert "ep_log_payload" in [t.name for t in w.tables.list("main", "default")]
    metrics = w.serving_endpoints.export_metrics("ep-log").contents.read().decode()
    assert "inference_records_dropped_total 0" in metrics

    # The table is changed only by disabling it first.
    with pytest.raises(InvalidParameterValue, match="disable it"):
        w.serving_endpoints.put_ai_gateway("ep-log", inference_table_config=gateway_table("other").inference_table_config)
    w.serving_endpoints.delete("ep-log")


def test_auto_capture_writes_the_legacy_table(server, models):
    model, _ = models
    w = server.client()
    w.serving_endpoints.create_and_wait(
        name="ep-capture",
        config=EndpointCoreConfigInput(
            name="ep-capture",
            served_entities=[entity(model, "2", name="b")],
            auto_capture_config=AutoCaptureConfigInput(catalog_name="main", schema_name="default", table_name_prefix="cap"),
        ),
    )
    assert invoke(server, "ep-capture", {"dataframe_records": [{"a": 1.0, "b": 2.0}]}).status_code == 200
    table = "main.default.cap_payload"
    rows = wait_for(
        lambda: sql_rows(w, f"SELECT status_code, request_metadata['model_version'], request_metadata['endpoint_name'], "
                            f"timestamp_ms, execution_time_ms FROM {table}"),
        timeout=60,
        interval=1,
    )
    assert [(int(r[0]), r[1], r[2]) for r in rows] == [(200, "2", "ep-capture")]
    w.serving_endpoints.delete("ep-capture")


def test_spooled_inference_rows_and_endpoints_survive_a_hard_stop(tmp_home, models):
    model, local = models
    first = Tarn(tmp_home, {"TARN_INFERENCE_FLUSH_MS": "600000"}).start()
    try:
        register(first, model)
        w = first.client()
        w.serving_endpoints.create_and_wait(
            name="ep-durable",
            config=EndpointCoreConfigInput(name="ep-durable", served_entities=[entity(model, "1", name="a")]),
            ai_gateway=gateway_table("durable"),
        )
        for _ in range(3):
            assert invoke(first, "ep-durable", {"dataframe_split": {"columns": COLUMNS, "data": ROWS}}).status_code == 200
        spool = tmp_home / "serving" / "ep-durable" / "inference-spool"
        wait_for(lambda: sum(len(p.read_text().splitlines()) for p in spool.glob("*.jsonl")) == 3, timeout=30)
    finally:
        first.stop(signal.SIGKILL)
    again = Tarn(tmp_home).start()
    try:
        w = again.client()
        ready = wait_for(lambda: w.serving_endpoints.get("ep-durable").state.ready == EndpointStateReady.READY, timeout=120)
        assert ready
        rows = sql_rows(w, "SELECT count(*) FROM main.default.durable_payload")
        assert int(rows[0][0]) == 3
        r = invoke(again, "ep-durable", {"dataframe_split": {"columns": COLUMNS, "data": ROWS}})
        assert r.json()["predictions"] == [pytest.approx(p) for p in local["1"].predict(pd.DataFrame(ROWS, columns=COLUMNS))]
    finally:
        again.stop()


def register(server, model):
    """Registers version 1 of `model` on `server` (a fresh workspace)."""
    from sklearn.linear_model import LinearRegression

    mp = pytest.MonkeyPatch()
    mp.setenv("DATABRICKS_HOST", server.url)
    mp.setenv("DATABRICKS_TOKEN", server.token)
    try:
        mlflow.set_experiment("/Users/admin/serving-durable")
        X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 7})
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(LinearRegression().fit(X, 3 * X.a + X.b), name="m", input_example=X.head(2))
        mlflow.register_model(info.model_uri, model)
    finally:
        mp.undo()
