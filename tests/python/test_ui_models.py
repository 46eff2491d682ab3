"""The model registry's and Model Serving's pages in headless Chromium:
registered models (workspace and Unity Catalog names), a model with its
versions and aliases, a version with its run's metrics and the endpoints
serving it, and an endpoint with its traffic split and the traffic its
inference table logged."""

import uuid

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from databricks.sdk.service.serving import (
    AiGatewayConfig,
    AiGatewayInferenceTableConfig,
    EndpointCoreConfigInput,
    Route,
    ServedEntityInput,
    TrafficConfig,
)

from conftest import wait_for

SUFFIX = uuid.uuid4().hex[:6]
MODEL = f"ui_model_{SUFFIX}"
UC_MODEL = f"main.default.ui_uc_{SUFFIX}"
ENDPOINT = f"ui-ep-{SUFFIX}"
SENT = 6


@pytest.fixture(scope="module")
def registered(tarn):
    """Two versions of a registered sklearn model logged in one run with a
    metric and a param, and the alias `champion` on version 2."""
    from sklearn.linear_model import LinearRegression

    mp = pytest.MonkeyPatch()
    mp.setenv("DATABRICKS_HOST", tarn.url)
    mp.setenv("DATABRICKS_TOKEN", tarn.token)
    mlflow.set_tracking_uri("databricks")
    mlflow.set_registry_uri("databricks")
    mlflow.set_experiment(f"/Users/admin/ui-models-{SUFFIX}")
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 7})
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_metric("rmse", 1.5, step=3)
        info = mlflow.sklearn.log_model(LinearRegression().fit(X, 3 * X.a + X.b), name="m", input_example=X.head(2))
    for _ in range(2):
        mlflow.register_model(info.model_uri, MODEL)
    # The workspace registry's client has no aliases; the REST API has.
    r = tarn.raw("POST", "/api/2.0/mlflow/registered-models/alias", json={"name": MODEL, "alias": "champion", "version": "2"})
    assert r.status_code == 200, r.text
    runs = [run.info]
    yield runs
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    mp.undo()


@pytest.fixture(scope="module")
def endpoint(tarn, w, registered):
    """An endpoint serving both versions 60/40, logging to an inference table."""
    entities = [
        ServedEntityInput(name="a", entity_name=MODEL, entity_version="1", workload_size="Small", scale_to_zero_enabled=False),
        ServedEntityInput(name="b", entity_name=MODEL, entity_version="2", workload_size="Small", scale_to_zero_enabled=False),
    ]
    routes = [Route(served_model_name="a", traffic_percentage=60), Route(served_model_name="b", traffic_percentage=40)]
    w.serving_endpoints.create_and_wait(
        name=ENDPOINT,
        config=EndpointCoreConfigInput(name=ENDPOINT, served_entities=entities, traffic_config=TrafficConfig(routes=routes)),
        ai_gateway=AiGatewayConfig(inference_table_config=AiGatewayInferenceTableConfig(
            catalog_name="main", schema_name="default", table_name_prefix=f"ui_ep_{SUFFIX}", enabled=True)),
    )
    body = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0], [3.0, 4.0]]}}
    for _ in range(SENT):
        r = tarn.raw("POST", f"/serving-endpoints/{ENDPOINT}/invocations", json=body)
        assert r.status_code == 200, r.text
    yield ENDPOINT
    if tarn.raw("GET", f"/api/2.0/serving-endpoints/{ENDPOINT}").status_code == 200:
        w.serving_endpoints.delete(ENDPOINT)


def test_models_list_pages_workspace_and_unity_catalog_models(tarn, browser, registered):
    r = tarn.raw("POST", "/api/2.1/unity-catalog/models",
                 json={"catalog_name": "main", "schema_name": "default", "name": f"ui_uc_{SUFFIX}", "comment": "uc"})
    assert r.status_code == 200, r.text
    browser.open(f"/ml/models?name={SUFFIX}")
    browser.wait("table.models")
    rows = {tr.get_attribute("data-model"): tr for tr in browser.all("table.models tbody tr")}
    assert set(rows) == {MODEL, UC_MODEL}
    row = rows[MODEL].text
    assert "v2" in row and "@champion" in row and "Workspace" in row
    assert "Unity Catalog" in rows[UC_MODEL].text
    assert browser.one("nav.sidenav a.active").text == "Models"
    browser.shot("models-list")
    # Paged on the server: one per page, the next page has the other.
    browser.open(f"/ml/models?name={SUFFIX}&limit=1")
    assert len(browser.all("table.models tbody tr")) == 1
    assert browser.all("nav.pager a[rel=next]")
    # A dotted (Unity Catalog) name routes to its page.
    browser.open(f"/ml/models?name={SUFFIX}")
    browser.one(f"tr[data-model='{UC_MODEL}'] a").click()
    browser.wait_text("Unity Catalog", "dl.facts")
    assert browser.path == f"/ml/models/{UC_MODEL}"
    assert "uc" in browser.text("dl.facts")


def test_model_page_shows_versions_aliases_and_source_runs(browser, registered):
    browser.open(f"/ml/models/{MODEL}")
    browser.wait("table.versions")
    versions = browser.all("table.versions tbody tr")
    assert [tr.get_attribute("data-version") for tr in versions] == ["2", "1"]
    assert "@champion" in versions[0].text and "READY" in versions[0].text
    alias = browser.one("table.aliases tr[data-alias=champion] a")
    assert alias.text == "Version 2" and alias.get_attribute("href").endswith(f"/ml/models/{MODEL}/versions/2")
    run = registered[0]
    link = versions[0].find_element("css selector", "a.run").get_attribute("href")
    assert link.endswith(f"/ml/experiments/{run.experiment_id}/runs/{run.run_id}")
    browser.shot("models-model")


def test_version_page_shows_lineage_metrics_and_serving(browser, registered, endpoint):
    run = registered[0]
    browser.open(f"/ml/models/{MODEL}/versions/2")
    browser.wait("table.metrics")
    assert browser.one("dl.facts a.run").get_attribute("href").endswith(
        f"/ml/experiments/{run.experiment_id}/runs/{run.run_id}")
    metric = browser.one("table.metrics tr[data-metric=rmse]").text
    assert "1.5" in metric and "3" in metric
    assert "alpha" in browser.text("body") and "0.5" in browser.text("body")
    assert "@champion" in browser.text("dl.facts")
    served = browser.one("table.endpoints").text
    assert endpoint in served and "READY" in served
    browser.shot("models-version")


def test_serving_list_shows_state_and_served_entities(browser, endpoint):
    browser.open("/ml/endpoints")
    row = browser.wait(f"tr[data-endpoint='{endpoint}']")
    assert "READY" in row.text and "NOT_UPDATING" in row.text
    links = [a.get_attribute("href") for a in row.find_elements("css selector", ".served a")]
    assert [link.split("/ml/models/")[1] for link in links] == [f"{MODEL}/versions/1", f"{MODEL}/versions/2"]
    assert browser.one("nav.sidenav a.active").text == "Serving"
    browser.shot("serving-list")


def test_endpoint_page_shows_split_and_logged_traffic(browser, endpoint):
    browser.open(f"/ml/endpoints/{endpoint}")
    browser.wait("svg.traffic-split")
    split = {r.get_attribute("data-route"): r.get_attribute("data-percent") for r in browser.all("svg.traffic-split rect")}
    assert split == {"a": "60", "b": "40"}
    entities = {tr.get_attribute("data-entity"): tr.text for tr in browser.all("table.entities tbody tr")}
    assert set(entities) == {"a", "b"} and "Small" in entities["a"] and "DEPLOYMENT_READY" in entities["b"]

    def logged():
        browser.open(f"/ml/endpoints/{endpoint}")
        figure = browser.wait("#endpoint-traffic")
        found = browser.all("[data-requests]")
        return found and int(found[0].get_attribute("data-requests")) >= SENT and figure

    # Rows reach the table within its flush interval (5 s by default).
    wait_for(logged, timeout=60, interval=1)
    assert browser.one(".card.status[data-code='200']")
    assert len(browser.all("table.recent tbody tr")) >= SENT
    assert "dataframe_split" in browser.text("table.recent")
    # uPlot drew both charts.
    browser.wait_until(lambda: len(browser.all("figure.chart canvas")) >= 2)
    assert [f.text.split("\n")[0] for f in browser.all("figure.chart figcaption")] == [
        "Requests per minute", "Latency per minute (ms)"]
    assert browser.all("button.action")  # the admin may delete it
    browser.shot("serving-endpoint")


def test_a_viewer_without_levels_sees_neither_models_nor_endpoints(tarn, registered, endpoint):
    user = f"ui-models-{SUFFIX}@example.com"
    token = tarn.cli_token(user)
    get = lambda path: requests.get(tarn.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)  # noqa: E731
    listing = get(f"/ml/models?name={SUFFIX}")
    assert listing.status_code == 200 and MODEL not in listing.text
    assert get(f"/ml/models/{MODEL}").status_code == 403
    assert get(f"/ml/models/{MODEL}/versions/1").status_code == 403
    assert endpoint not in get("/ml/endpoints").text
    assert get(f"/ml/endpoints/{endpoint}").status_code == 403
    assert get(f"/ml/endpoints/{endpoint}/live").status_code == 403
    # Actions need htmx, then the API's level.
    r = requests.post(f"{tarn.url}/ml/endpoints/{endpoint}/delete", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 400
    r = requests.post(f"{tarn.url}/ml/endpoints/{endpoint}/delete",
                      headers={"Authorization": f"Bearer {token}", "HX-Request": "true"}, timeout=30)
    assert r.status_code == 403

    # CAN_READ on the model shows it, but not the run's details, which
    # need the experiment.
    model_id = tarn.raw("GET", f"/api/2.0/mlflow/databricks/registered-models/get?name={MODEL}").json()[
        "registered_model_databricks"]["id"]
    r = tarn.raw("PATCH", f"/api/2.0/permissions/registered-models/{model_id}",
                 json={"access_control_list": [{"user_name": user, "permission_level": "CAN_READ"}]})
    assert r.status_code == 200, r.text
    assert MODEL in get(f"/ml/models?name={SUFFIX}").text
    page = get(f"/ml/models/{MODEL}/versions/2")
    assert page.status_code == 200 and "@champion" in page.text
    assert registered[0].run_id in page.text and "rmse" not in page.text and "alpha" not in page.text


def test_deleting_from_the_page_deletes_the_endpoint(tarn, endpoint):
    # The last test of the module: the endpoint is gone after it.
    r = tarn.raw("POST", f"/ml/endpoints/{endpoint}/delete", headers={"HX-Request": "true"})
    assert r.status_code == 204 and r.headers["HX-Location"] == "/ml/endpoints"
    assert tarn.raw("GET", f"/api/2.0/serving-endpoints/{endpoint}").status_code == 404
    assert tarn.raw("GET", f"/ml/endpoints/{endpoint}").status_code == 404
