"""`tarn bundle deploy` of the resource types test_bundle.py leaves out: a
quality monitor on a table written through the SQL warehouse, a serving
endpoint of a registered sklearn model, and a cluster. Each is deployed to
the development target, checked through databricks-sdk, changed and
redeployed (updated in place: same id), and destroyed (gone)."""

import datetime

import pytest
from databricks.sdk import errors
from databricks.sdk.service.serving import DataframeSplitInput, EndpointStateConfigUpdate, EndpointStateReady

from conftest import own_server
from test_bundle import ids, ok
from test_pipelines import sql_rows

DEV_TARGET = """
targets:
  dev:
    mode: development
    default: true
"""

MONITOR_BUNDLE = """\
bundle:
  name: monitored

resources:
  quality_monitors:
    m:
      table_name: main.default.bundle_scores
      assets_dir: /Workspace/Users/admin/bundle_monitors
      output_schema_name: main.default
      snapshot: {}
SLICING
""" + DEV_TARGET

ENDPOINT_BUNDLE = """\
bundle:
  name: served

resources:
  model_serving_endpoints:
    ep:
      name: scorer
      config:
        served_entities:
          - entity_name: MODEL
            entity_version: "VERSION"
            workload_size: Small
            scale_to_zero_enabled: true
""" + DEV_TARGET

SPARK_VERSION = "16.4.x-scala2.13"

CLUSTER_BUNDLE = f"""\
bundle:
  name: compute

resources:
  clusters:
    c:
      cluster_name: bundle_cluster
      spark_version: {SPARK_VERSION}
      num_workers: 0
      autotermination_minutes: MINUTES
      spark_conf:
        spark.sql.shuffle.partitions: "4"
""" + DEV_TARGET

# The model's environment is built the first time it is served.
READY_WAIT = datetime.timedelta(minutes=10)


@pytest.fixture(scope="module")
def server():
    yield from own_server("tarn-bundle-resources-")


@pytest.fixture(scope="module")
def w(server):
    return server.client()


def test_quality_monitor(server, w, tmp_path):
    table = "main.default.bundle_scores"
    sql_rows(w, f"CREATE TABLE {table} AS SELECT id, id * 2.0 AS x FROM range(100)")
    (tmp_path / "databricks.yml").write_text(MONITOR_BUNDLE.replace("SLICING\n", ""))
    out = ok(server, tmp_path, "deploy")
    assert "created quality_monitors.m" in out, out
    found = ids(server, tmp_path)
    assert found["quality_monitors.m"] == table
    monitor = w.quality_monitors.get(table)
    assert monitor.output_schema_name == "main.default" and monitor.snapshot is not None
    assert not monitor.slicing_exprs

    (tmp_path / "databricks.yml").write_text(MONITOR_BUNDLE.replace("SLICING", '      slicing_exprs: ["x > 100"]'))
    out = ok(server, tmp_path, "deploy")
    assert "updated quality_monitors.m" in out, out
    assert ids(server, tmp_path) == found
    assert w.quality_monitors.get(table).slicing_exprs == ["x > 100"]

    ok(server, tmp_path, "destroy", "--auto-approve")
    with pytest.raises(errors.NotFound):
        w.quality_monitors.get(table)


@pytest.fixture(scope="module")
def model(server):
    """Two versions of a registered linear model, logged through the
    `databricks` URI as test_serving.py logs them."""
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    mp = pytest.MonkeyPatch()
    mp.setenv("DATABRICKS_HOST", server.url)
    mp.setenv("DATABRICKS_TOKEN", server.token)
    mlflow.set_tracking_uri("databricks")
    mlflow.set_registry_uri("databricks")
    mlflow.set_experiment("/Users/admin/bundle_serving")
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 7})
    name = "bundle_model"
    for target in [3 * X.a + X.b, 10 * X.a]:
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(LinearRegression().fit(X, target), name="m", input_example=X.head(2))
        mlflow.register_model(info.model_uri, name)
    yield name
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    mp.undo()


def settled(w, name):
    endpoint = w.serving_endpoints.wait_get_serving_endpoint_not_updating(name, timeout=READY_WAIT)
    assert endpoint.state.ready == EndpointStateReady.READY, endpoint.state
    assert endpoint.state.config_update == EndpointStateConfigUpdate.NOT_UPDATING
    return endpoint


def answer(w, name):
    rows = w.serving_endpoints.query(name, dataframe_split=DataframeSplitInput(columns=["a", "b"], data=[[1.0, 2.0]]))
    return rows.predictions[0]


def test_model_serving_endpoint(server, w, model, tmp_path):
    def write(version):
        (tmp_path / "databricks.yml").write_text(ENDPOINT_BUNDLE.replace("MODEL", model).replace("VERSION", version))

    write("1")
    out = ok(server, tmp_path, "deploy")
    assert "created model_serving_endpoints.ep" in out, out
    found = ids(server, tmp_path)
    name = found["model_serving_endpoints.ep"]
    assert name == "dev_admin_scorer"
    endpoint = settled(w, name)
    assert {t.key: t.value for t in endpoint.tags or []}.get("dev") == "admin"
    (served,) = endpoint.config.served_entities
    assert (served.entity_name, served.entity_version) == (model, "1")
    assert answer(w, name) == pytest.approx(3 * 1.0 + 2.0)

    write("2")
    out = ok(server, tmp_path, "deploy")
    assert "updated model_serving_endpoints.ep" in out, out
    assert ids(server, tmp_path) == found
    endpoint = settled(w, name)
    (served,) = endpoint.config.served_entities
    assert served.entity_version == "2"
    assert answer(w, name) == pytest.approx(10.0)

    ok(server, tmp_path, "destroy", "--auto-approve")
    with pytest.raises(errors.NotFound):
        w.serving_endpoints.get(name)


def test_cluster(server, w, tmp_path):
    assert SPARK_VERSION in [v.key for v in w.clusters.spark_versions().versions]
    (tmp_path / "databricks.yml").write_text(CLUSTER_BUNDLE.replace("MINUTES", "10"))
    out = ok(server, tmp_path, "deploy")
    assert "created clusters.c" in out, out
    found = ids(server, tmp_path)
    cluster_id = found["clusters.c"]
    cluster = w.clusters.get(cluster_id)
    assert cluster.cluster_name == "[dev admin] bundle_cluster"
    assert cluster.autotermination_minutes == 10 and cluster.num_workers == 0
    assert cluster.spark_conf == {"spark.sql.shuffle.partitions": "4"}
    assert (cluster.custom_tags or {}).get("dev") == "admin"

    (tmp_path / "databricks.yml").write_text(CLUSTER_BUNDLE.replace("MINUTES", "20"))
    out = ok(server, tmp_path, "deploy")
    assert "updated clusters.c" in out, out
    assert ids(server, tmp_path) == found
    cluster = w.clusters.get(cluster_id)
    assert cluster.cluster_name == "[dev admin] bundle_cluster" and cluster.autotermination_minutes == 20

    ok(server, tmp_path, "destroy", "--auto-approve")
    with pytest.raises(errors.ResourceDoesNotExist):
        w.clusters.get(cluster_id)
    assert cluster_id not in [c.cluster_id for c in w.clusters.list()]
