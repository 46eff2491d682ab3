"""Unity Catalog registered models through databricks-sdk
(`w.registered_models`, `w.model_versions`): the MLflow registry's models
named `catalog.schema.model`, so a version the `mlflow` client registers is
listed through the UC API; aliases; paging; the UC errors for a missing
catalog or schema; CREATE_MODEL and ownership; a schema dropped with its
models; a bundle's `registered_models` resource deployed and destroyed."""

import os
import subprocess

import mlflow
import pytest
from conftest import own_server, tarn_binary
from databricks.sdk.errors import DatabricksError, NotFound, PermissionDenied
from databricks.sdk.service import catalog
from mlflow import MlflowClient
from mlflow.exceptions import RestException

BOB = "bob@example.com"


@pytest.fixture(scope="module")
def server():
    yield from own_server("tarn-uc-models-")


@pytest.fixture(scope="module")
def w(server):
    return server.client()


@pytest.fixture
def mlflow_client(server):
    # tarn serves MLflow calls without a token on loopback.
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    os.environ["MLFLOW_REGISTRY_URI"] = server.url
    yield MlflowClient(server.url, registry_uri=server.url)
    mlflow.set_tracking_uri(None)


def test_lifecycle_with_an_mlflow_version_and_aliases(w, mlflow_client):
    created = w.registered_models.create(catalog_name="main", schema_name="default", name="Churn",
                                         comment="first cut")
    assert (created.full_name, created.name, created.catalog_name, created.schema_name) == (
        "main.default.churn", "churn", "main", "default")
    assert created.owner == "admin" and created.created_by == "admin" and created.created_at
    got = w.registered_models.get("main.default.churn")
    assert got.comment == "first cut" and got.storage_location

    # The MLflow registry holds the same model under its three-part name.
    assert mlflow_client.get_registered_model("main.default.churn").description == "first cut"
    mlflow.set_experiment("uc-models")
    with mlflow.start_run() as run:
        mlflow.log_text("weights", "model/weights.txt")
    v1 = mlflow_client.create_model_version("main.default.churn", f"runs:/{run.info.run_id}/model",
                                            run_id=run.info.run_id)
    v2 = mlflow_client.create_model_version("main.default.churn", f"runs:/{run.info.run_id}/model")
    assert (v1.version, v2.version) == ("1", "2")

    versions = list(w.model_versions.list("main.default.churn"))
    assert [v.version for v in versions] == [2, 1]
    one = w.model_versions.get("main.default.churn", 1)
    assert (one.model_name, one.catalog_name, one.schema_name, one.run_id) == (
        "churn", "main", "default", run.info.run_id)
    assert one.status == catalog.ModelVersionInfoStatus.READY and one.storage_location.endswith("/model")

    alias = w.registered_models.set_alias("main.default.churn", "champion", version_num=1)
    assert (alias.alias_name, alias.version_num) == ("champion", 1)
    assert w.model_versions.get_by_alias("main.default.churn", "champion").version == 1
    assert mlflow_client.get_model_version_by_alias("main.default.churn", "champion").version == "1"
    with_aliases = w.registered_models.get("main.default.churn", include_aliases=True)
    assert [(a.alias_name, a.version_num) for a in with_aliases.aliases] == [("champion", 1)]
    w.registered_models.delete_alias("main.default.churn", "champion")
    with pytest.raises(NotFound):
        w.model_versions.get_by_alias("main.default.churn", "champion")

    w.model_versions.delete("main.default.churn", 2)
    assert [v.version for v in w.model_versions.list("main.default.churn")] == [1]

    updated = w.registered_models.update("main.default.churn", comment="second cut")
    assert updated.comment == "second cut"
    renamed = w.registered_models.update("main.default.churn", new_name="retention")
    assert renamed.full_name == "main.default.retention"
    with pytest.raises(NotFound):
        w.registered_models.get("main.default.churn")
    assert [v.version for v in w.model_versions.list("main.default.retention")] == [1]

    w.registered_models.delete("main.default.retention")
    with pytest.raises(NotFound):
        w.registered_models.get("main.default.retention")
    with pytest.raises(RestException) as gone:
        mlflow_client.get_registered_model("main.default.retention")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_list_pages_and_filters_by_schema(server, w):
    w.schemas.create(name="pages", catalog_name="main")
    for name in ("a", "b", "c"):
        w.registered_models.create(catalog_name="main", schema_name="pages", name=name)
    w.registered_models.create(catalog_name="main", schema_name="default", name="elsewhere")
    listed = w.registered_models.list(catalog_name="main", schema_name="pages", max_results=1)
    assert [m.full_name for m in listed] == ["main.pages.a", "main.pages.b", "main.pages.c"]
    first = server.raw("GET", "/api/2.1/unity-catalog/models",
                       params={"catalog_name": "main", "schema_name": "pages", "max_results": 2}).json()
    assert [m["name"] for m in first["registered_models"]] == ["a", "b"] and first["next_page_token"]
    everything = [m.full_name for m in w.registered_models.list()]
    assert {"main.pages.a", "main.default.elsewhere"} <= set(everything)


def test_unknown_catalog_or_schema_and_bad_names(w):
    with pytest.raises(NotFound) as missing:
        w.registered_models.create(catalog_name="main", schema_name="nowhere", name="m")
    assert missing.value.error_code == "SCHEMA_DOES_NOT_EXIST"
    with pytest.raises(NotFound) as missing:
        w.registered_models.create(catalog_name="nocat", schema_name="default", name="m")
    assert missing.value.error_code == "CATALOG_DOES_NOT_EXIST"
    with pytest.raises(NotFound) as missing:
        list(w.registered_models.list(catalog_name="main", schema_name="nowhere"))
    assert missing.value.error_code == "SCHEMA_DOES_NOT_EXIST"
    with pytest.raises(DatabricksError) as bad:
        w.registered_models.get("just-a-name")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"
    w.registered_models.create(catalog_name="main", schema_name="default", name="twice")
    with pytest.raises(DatabricksError) as twice:
        w.registered_models.create(catalog_name="main", schema_name="default", name="twice")
    assert twice.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_create_model_privilege_and_ownership(server, w):
    bob = server.client(server.cli_token(BOB))
    w.schemas.create(name="locked", catalog_name="main")
    w.registered_models.create(catalog_name="main", schema_name="locked", name="admins")
    with pytest.raises(PermissionDenied, match="USE SCHEMA"):
        bob.registered_models.get("main.locked.admins")
    assert "main.locked.admins" not in [m.full_name for m in bob.registered_models.list()]
    w.grants.update("schema", "main.locked", changes=[
        catalog.PermissionsChange(principal=BOB, add=[catalog.Privilege.USE_SCHEMA])])
    assert bob.registered_models.get("main.locked.admins").owner == "admin"
    with pytest.raises(PermissionDenied, match="CREATE MODEL"):
        bob.registered_models.create(catalog_name="main", schema_name="locked", name="mine")
    with pytest.raises(PermissionDenied, match="not an owner"):
        bob.registered_models.update("main.locked.admins", comment="mine now")

    # Everyone may create models in main.default, and owns them.
    mine = bob.registered_models.create(catalog_name="main", schema_name="default", name="bobs")
    assert mine.owner == BOB
    assert bob.registered_models.update("main.default.bobs", comment="ok").comment == "ok"
    handed = bob.registered_models.update("main.default.bobs", owner="admin")
    assert handed.owner == "admin"
    with pytest.raises(PermissionDenied):
        bob.registered_models.delete("main.default.bobs")
    w.registered_models.delete("main.default.bobs")


def test_schema_delete_needs_force_for_its_models(w):
    w.schemas.create(name="doomed", catalog_name="main")
    w.registered_models.create(catalog_name="main", schema_name="doomed", name="m")
    with pytest.raises(DatabricksError, match="not empty"):
        w.schemas.delete("main.doomed")
    w.schemas.delete("main.doomed", force=True)
    with pytest.raises(NotFound):
        w.registered_models.get("main.doomed.m")
    w.schemas.create(name="doomed", catalog_name="main")
    assert list(w.registered_models.list(catalog_name="main", schema_name="doomed")) == []


BUNDLE_YML = """\
bundle:
  name: models

targets:
  only:
    default: true

resources:
  registered_models:
    churn:
      catalog_name: main
      schema_name: default
      name: bundled
      comment: COMMENT
"""


def test_a_bundle_deploys_a_registered_model(server, w, tmp_path):
    def bundle(*args):
        env = dict(os.environ, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=server.token)
        done = subprocess.run([tarn_binary(), "bundle", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    (tmp_path / "databricks.yml").write_text(BUNDLE_YML.replace("COMMENT", "from a bundle"))
    assert "created registered_models.churn" in bundle("deploy")
    assert w.registered_models.get("main.default.bundled").comment == "from a bundle"
    (tmp_path / "databricks.yml").write_text(BUNDLE_YML.replace("COMMENT", "changed"))
    bundle("deploy")
    assert w.registered_models.get("main.default.bundled").comment == "changed"
    bundle("destroy", "--auto-approve")
    with pytest.raises(NotFound):
        w.registered_models.get("main.default.bundled")
