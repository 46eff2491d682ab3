"""The experiment pages in headless Chromium, on runs the `mlflow` client
logs: the experiments list, an experiment's runs searched, sorted and with
chosen columns, a run with its charts and artifacts, runs compared, and
the client's printed run link landing on the run page."""

import json
import os
import struct
import uuid
import zlib

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient

# (run name, alpha, optimizer, loss per step)
RUNS = [
    ("alpha-run", "0.1", "adam", [0.9, 0.6, 0.4, 0.3]),
    ("beta-run", "0.5", "adam", [1.0, 0.8, 0.7, 0.6]),
    ("gamma-run", "0.9", "sgd", [1.2, 1.1, 1.0, 0.9]),
]
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><script>alert(1)</script></svg>'


def tiny_png(width=96, height=48):
    """A valid RGB PNG: a red-to-blue gradient."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"".join(bytes((255 - x * 255 // width, 64, x * 255 // width)) for x in range(width))
    rows = b"".join(b"\x00" + row for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def logged(tarn, tmp_path_factory):
    """An experiment with three runs: params, metrics over steps, a text,
    a PNG and an SVG artifact; the first also logs a registered model."""
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tarn.url)
    mlflow.set_registry_uri(tarn.url)
    os.environ["MLFLOW_REGISTRY_URI"] = tarn.url
    name = f"ui-experiment-{uuid.uuid4().hex[:8]}"
    model_name = f"ui-model-{uuid.uuid4().hex[:8]}"
    experiment_id = mlflow.create_experiment(name)
    files = tmp_path_factory.mktemp("artifacts")
    (files / "tiny.png").write_bytes(tiny_png())
    (files / "badge.svg").write_text(SVG)
    runs = {}
    for run_name, alpha, optimizer, losses in RUNS:
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            mlflow.log_params({"alpha": alpha, "batch_size": 32, "epochs": 4, "optimizer": optimizer})
            for step, loss in enumerate(losses):
                mlflow.log_metric("loss", loss, step=step)
                mlflow.log_metric("accuracy", 1 - loss / 2, step=step)
            mlflow.log_text(f"notes of {run_name}\nline two\n", "notes/summary.txt")
            mlflow.log_artifact(str(files / "tiny.png"), "plots")
            mlflow.log_artifact(str(files / "badge.svg"), "plots")
            if run_name == "alpha-run":
                X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
                model = LogisticRegression().fit(X, np.array([0, 1, 0, 1]))
                mlflow.sklearn.log_model(model, name="clf", registered_model_name=model_name)
        runs[run_name] = run.info.run_id
    yield {"id": experiment_id, "name": name, "runs": runs, "model": model_name}
    mlflow.set_tracking_uri(None)


def run_names(browser):
    return [td.text for td in browser.all("table.runs tbody td.name")]


def test_experiments_list_links_each_experiment_with_its_run_count(browser, logged):
    browser.open("/ml/experiments?name=" + logged["name"].upper())
    row = browser.wait(f'table.experiments tr[data-experiment="{logged["id"]}"]')
    assert logged["name"] in row.text
    assert row.find_element("css selector", "td.runs").text == "3"
    link = row.find_element("css selector", "a")
    assert link.get_attribute("href").endswith(f"/ml/experiments/{logged['id']}")
    # The filter keeps out every other experiment.
    assert len(browser.all("table.experiments tbody tr")) == 1
    assert browser.one("nav.sidenav a.active").text == "Experiments"
    browser.open("/ml/experiments")
    browser.wait("table.experiments")
    browser.shot("experiments-list")
    browser.open("/ml/experiments?name=no-such-experiment-anywhere")
    browser.wait_text("No experiments.")


def test_runs_table_searches_sorts_and_chooses_columns(browser, logged):
    base = f"/ml/experiments/{logged['id']}"
    browser.open(base)
    browser.wait("table.runs")
    assert sorted(run_names(browser)) == ["alpha-run", "beta-run", "gamma-run"]
    headers = [th.get_attribute("data-column") for th in browser.all("table.runs thead th[data-column]")]
    assert "metrics.loss" in headers and "params.alpha" in headers and "params.optimizer" not in headers
    # MLflow's search grammar, typed into the search box.
    box = browser.one("form.search input[name=filter]")
    box.send_keys("metrics.loss < 0.65")
    browser.one("form.search button").click()
    browser.wait_until(lambda: sorted(run_names(browser)) == ["alpha-run", "beta-run"])
    assert "filter=metrics.loss" in browser.path
    browser.open(base + "?filter=" + requests.utils.quote("params.optimizer = 'sgd' and metrics.loss > 0.5"))
    browser.wait("table.runs")
    assert run_names(browser) == ["gamma-run"]
    # A column header sorts by it, descending first, then ascending.
    browser.open(base)
    browser.one('th[data-column="metrics.loss"] a').click()
    browser.wait_until(lambda: "order_by=metrics.loss+DESC" in browser.path)
    assert run_names(browser) == ["gamma-run", "beta-run", "alpha-run"]
    browser.one('th[data-column="metrics.loss"] a').click()
    browser.wait_until(lambda: "order_by=metrics.loss+ASC" in browser.path)
    assert run_names(browser) == ["alpha-run", "beta-run", "gamma-run"]
    # The columns chooser adds a param column.
    browser.one("details.columns summary").click()
    browser.one('form.columns input[value="params.optimizer"]').click()
    browser.one("form.columns button").click()
    browser.wait('table.runs th[data-column="params.optimizer"]')
    assert run_names(browser) == ["alpha-run", "beta-run", "gamma-run"], "the order is kept"
    cells = [td.text for td in browser.all('table.runs td[data-column="params.optimizer"]')]
    assert cells == ["adam", "adam", "sgd"]
    assert "clf" in browser.text("table.logged-models")
    browser.shot("experiments-runs")
    # A filter the grammar refuses shows the API's message.
    browser.open(base + "?filter=" + requests.utils.quote("metrics.loss <<< 1"))
    browser.wait("p.error")
    assert "filter" in browser.text("p.error").lower() or "invalid" in browser.text("p.error").lower()


def test_run_page_shows_params_metrics_charts_and_artifacts(browser, logged, tarn):
    run = logged["runs"]["alpha-run"]
    page = f"/ml/experiments/{logged['id']}/runs/{run}"
    browser.open(page)
    browser.wait("table.params")
    assert browser.text("h1") == "alpha-run"
    assert "FINISHED" in browser.text("dl.facts")
    params = {tr.get_attribute("data-key"): tr.text for tr in browser.all("table.params tbody tr")}
    assert params["alpha"] == "alpha 0.1" and params["optimizer"] == "optimizer adam"
    loss = browser.one('table.metrics tr[data-key="loss"]').text
    assert "0.3" in loss and " 3 " in f" {loss} "
    # uPlot draws each metric's chart.
    browser.wait("figure.chart canvas")
    assert len(browser.all("figure.chart")) == 2
    spec = json.loads(browser.all("figure.chart")[1].get_attribute("data-chart"))
    assert spec["x"] == [0, 1, 2, 3] and spec["series"][0]["y"] == [0.9, 0.6, 0.4, 0.3]
    # The run's registered model version links to the models page.
    version = browser.one("table.versions a[href*='/versions/']")
    assert version.get_attribute("href").endswith(f"/ml/models/{logged['model']}/versions/1")
    assert "clf" in browser.text("table.logged-models")
    # A text artifact inline.
    browser.one('table.artifacts tr[data-path="notes"] a').click()
    browser.wait_until(lambda: "path=notes" in browser.path)
    link = browser.wait('table.artifacts tr[data-path="notes/summary.txt"] a').get_attribute("href")
    assert link.endswith("?path=notes%2Fsummary.txt#artifacts")
    browser.open(link[len(tarn.url):])
    browser.wait("pre.artifact-text")
    assert browser.text("pre.artifact-text") == "notes of alpha-run\nline two"
    browser.shot("experiments-run")
    # An image inline, through the artifact route.
    browser.open(page + "?path=plots/tiny.png")
    img = browser.wait("img.inline-image")
    browser.wait_until(lambda: browser.script("return arguments[0].complete && arguments[0].naturalWidth", img))
    assert browser.script("return arguments[0].naturalWidth", img) == 96
    browser.shot("experiments-artifact-image")
    served = requests.get(tarn.url + page + "/artifact?path=plots/tiny.png", timeout=10)
    assert served.headers["content-type"] == "image/png" and served.content.startswith(b"\x89PNG")
    svg = requests.get(tarn.url + page + "/artifact?path=plots/badge.svg", timeout=10)
    assert svg.headers["content-type"] == "image/svg+xml" and svg.headers["content-security-policy"] == "sandbox"
    assert requests.get(tarn.url + page + "/artifact?path=../x", timeout=10).status_code == 400
    # A run under another experiment's path is not found.
    assert requests.get(tarn.url + f"/ml/experiments/0/runs/{run}", timeout=10).status_code == 404


def test_compare_overlays_metrics_and_sets_params_side_by_side(browser, logged):
    browser.open(f"/ml/experiments/{logged['id']}?order_by=attributes.run_name+ASC")
    browser.wait("table.runs")
    for box in browser.all("table.runs input[name=runs]"):
        box.click()
    browser.one("form#compare button").click()
    browser.wait("table.side-by-side.params")
    assert browser.path.startswith(f"/ml/experiments/{logged['id']}/compare?runs=")
    heads = [th.text for th in browser.all("table.params thead th")]
    assert heads == ["Parameter", "alpha-run", "beta-run", "gamma-run"]
    rows = {tr.get_attribute("data-key"): tr for tr in browser.all("table.params tbody tr")}
    assert "differs" in rows["optimizer"].get_attribute("class")
    assert "differs" in rows["alpha"].get_attribute("class")
    assert "differs" not in (rows["batch_size"].get_attribute("class") or "")
    assert rows["optimizer"].text == "optimizer adam adam sgd"
    browser.wait("figure.chart canvas")
    for figure in browser.all("figure.chart"):
        spec = json.loads(figure.get_attribute("data-chart"))
        assert [s["label"] for s in spec["series"]] == ["alpha-run", "beta-run", "gamma-run"]
    loss = next(json.loads(f.get_attribute("data-chart")) for f in browser.all("figure.chart")
                if json.loads(f.get_attribute("data-chart"))["title"] == "loss")
    assert loss["series"][2]["y"] == [1.2, 1.1, 1.0, 0.9]
    browser.shot("experiments-compare")
    # The comma form of the link works too.
    ids = ",".join(logged["runs"][n] for n in ("alpha-run", "gamma-run"))
    browser.open(f"/ml/experiments/{logged['id']}/compare?runs={ids}")
    browser.wait("table.params")
    assert [th.text for th in browser.all("table.params thead th")][1:] == ["alpha-run", "gamma-run"]


def test_the_mlflow_run_link_lands_on_the_run_page(browser, logged, tarn):
    run = logged["runs"]["beta-run"]
    client = MlflowClient(tarn.url)
    assert client.get_run(run).info.experiment_id == logged["id"]
    browser.open(f"/#/experiments/{logged['id']}/runs/{run}")
    browser.wait_until(lambda: browser.path == f"/ml/experiments/{logged['id']}/runs/{run}")
    browser.wait("table.params")
    assert browser.text("h1") == "beta-run"
    browser.open(f"/#/experiments/{logged['id']}")
    browser.wait_until(lambda: browser.path == f"/ml/experiments/{logged['id']}")
    browser.wait("table.runs")


def test_a_viewer_sees_only_experiments_they_may_read(tarn, w, logged):
    from databricks.sdk.service import ml

    token = tarn.cli_token("dora-ui-experiments@example.com")
    as_dora = {"Authorization": f"Bearer {token}"}
    run = logged["runs"]["alpha-run"]
    pages = [f"/ml/experiments/{logged['id']}", f"/ml/experiments/{logged['id']}/runs/{run}",
             f"/ml/experiments/{logged['id']}/runs/{run}/artifact?path=notes/summary.txt",
             f"/ml/experiments/{logged['id']}/compare?runs={run}"]
    listed = requests.get(tarn.url + "/ml/experiments?name=" + logged["name"], headers=as_dora, timeout=10)
    row = f'data-experiment="{logged["id"]}"'
    assert listed.status_code == 200 and row not in listed.text and "No experiments." in listed.text
    for page in pages:
        assert requests.get(tarn.url + page, headers=as_dora, timeout=10).status_code == 403, page
    acl = [ml.ExperimentAccessControlRequest(user_name="dora-ui-experiments@example.com",
                                             permission_level=ml.ExperimentPermissionLevel.CAN_READ)]
    w.experiments.update_permissions(logged["id"], access_control_list=acl)
    listed = requests.get(tarn.url + "/ml/experiments?name=" + logged["name"], headers=as_dora, timeout=10)
    assert row in listed.text
    for page in pages:
        assert requests.get(tarn.url + page, headers=as_dora, timeout=10).status_code == 200, page
