"""The Permissions API on MLflow experiments, registered models, the SQL
warehouse and workspace notebooks and directories, through databricks-sdk
(`w.experiments`, `w.model_registry`, `w.warehouses`, `w.workspace` and
their `*_permissions` wrappers) and the `mlflow` client: an admin, a user
given levels directly, and a group's member."""

import base64
import time

import pytest
from conftest import own_server
from databricks.sdk.errors import NotFound, PermissionDenied
from databricks.sdk.service import iam, ml, sql, workspace

CAROL = "carol@example.com"


@pytest.fixture(scope="module")
def server():
    yield from own_server("tarn-object-permissions-")


@pytest.fixture(scope="module")
def carol(server):
    return server.client(server.cli_token(CAROL))


def levels(acl):
    return {(a.user_name or a.group_name or a.service_principal_name, p.permission_level.value, bool(p.inherited))
            for a in acl.access_control_list for p in a.all_permissions}


def refused(*calls):
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()


# -- experiments -------------------------------------------------------------

def grant_experiment(w, experiment_id, level, replace=False):
    acl = [ml.ExperimentAccessControlRequest(user_name=CAROL, permission_level=level)]
    if replace:
        return w.experiments.set_permissions(experiment_id, access_control_list=acl)
    return w.experiments.update_permissions(experiment_id, access_control_list=acl)


def test_experiment_levels(server, carol):
    w = server.client()
    experiment_id = w.experiments.create_experiment(name="/Shared/guarded-experiment").experiment_id
    run_id = w.experiments.create_run(experiment_id=experiment_id).run.info.run_id

    refused(lambda: carol.experiments.get_experiment(experiment_id),
            lambda: carol.experiments.get_run(run_id),
            lambda: carol.experiments.get_permissions(experiment_id))
    assert experiment_id not in [e.experiment_id for e in carol.experiments.search_experiments()]

    # CAN_READ reads the experiment and its runs, and writes nothing.
    acl = grant_experiment(w, experiment_id, ml.ExperimentPermissionLevel.CAN_READ, replace=True)
    assert (CAROL, "CAN_READ", False) in levels(acl)
    assert carol.experiments.get_experiment(experiment_id).experiment.name == "/Shared/guarded-experiment"
    assert carol.experiments.get_run(run_id).run.info.experiment_id == experiment_id
    assert experiment_id in [e.experiment_id for e in carol.experiments.search_experiments()]
    assert run_id in [r.info.run_id for r in carol.experiments.search_runs(experiment_ids=[experiment_id])]
    refused(lambda: carol.experiments.create_run(experiment_id=experiment_id),
            lambda: carol.experiments.log_metric(key="loss", value=1.0, timestamp=0, run_id=run_id),
            lambda: carol.experiments.set_experiment_tag(experiment_id, "team", "risk"))

    # CAN_EDIT creates and logs to runs; renaming and deleting need CAN_MANAGE.
    grant_experiment(w, experiment_id, ml.ExperimentPermissionLevel.CAN_EDIT)
    mine = carol.experiments.create_run(experiment_id=experiment_id).run.info.run_id
    carol.experiments.log_metric(key="loss", value=0.25, timestamp=int(time.time() * 1000), run_id=mine)
    assert carol.experiments.get_run(mine).run.data.metrics[0].value == 0.25
    refused(lambda: carol.experiments.update_experiment(experiment_id, new_name="/Shared/renamed"),
            lambda: carol.experiments.delete_experiment(experiment_id),
            lambda: carol.experiments.update_permissions(experiment_id, access_control_list=[]))

    grant_experiment(w, experiment_id, ml.ExperimentPermissionLevel.CAN_MANAGE)
    carol.experiments.update_experiment(experiment_id, new_name="/Shared/renamed")
    assert w.experiments.get_experiment(experiment_id).experiment.name == "/Shared/renamed"
    assert (CAROL, "CAN_MANAGE", False) in levels(w.experiments.get_permissions(experiment_id))
    carol.experiments.delete_experiment(experiment_id)
    assert w.experiments.get_experiment(experiment_id).experiment.lifecycle_stage == "deleted"


def test_experiment_creator_owns_it_and_default_experiment_is_everyones(server, carol):
    w = server.client()
    mine = carol.experiments.create_experiment(name="carols-experiment").experiment_id
    assert (CAROL, "CAN_MANAGE", False) in levels(carol.experiments.get_permissions(mine))
    carol.experiments.update_experiment(mine, new_name="carols-experiment-2")
    # Others do not see it until it is shared.
    dave = server.client(server.cli_token("dave@example.com"))
    refused(lambda: dave.experiments.get_experiment(mine))
    assert mine not in [e.experiment_id for e in dave.experiments.search_experiments()]
    assert mine in [e.experiment_id for e in w.experiments.search_experiments()]
    # A group's level reaches its members.
    w.groups.create(display_name="ml-readers", members=[iam.ComplexValue(value=dave.current_user.me().id)])
    carol.experiments.update_permissions(mine, access_control_list=[ml.ExperimentAccessControlRequest(
        group_name="ml-readers", permission_level=ml.ExperimentPermissionLevel.CAN_READ)])
    assert dave.experiments.get_experiment(mine).experiment.name == "carols-experiment-2"
    refused(lambda: dave.experiments.create_run(experiment_id=mine))
    # Every user logs to the default experiment, as before.
    run = dave.experiments.create_run(experiment_id="0").run
    assert run.info.experiment_id == "0"


def test_mlflow_client_with_a_token_is_refused_then_reads(server, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    w = server.client()
    experiment_id = w.experiments.create_experiment(name="mlflow-guarded").experiment_id
    run_id = w.experiments.create_run(experiment_id=experiment_id).run.info.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.cli_token(CAROL))
    client = MlflowClient(tracking_uri=server.url)
    with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
        client.get_experiment(experiment_id)
    grant_experiment(w, experiment_id, ml.ExperimentPermissionLevel.CAN_READ)
    assert client.get_experiment(experiment_id).name == "mlflow-guarded"
    with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
        client.create_run(experiment_id)
    # Artifacts (the proxied store) follow the experiment's levels.
    with pytest.raises(Exception, match="403"):
        client.log_text(run_id, "hello", "notes.txt")
    grant_experiment(w, experiment_id, ml.ExperimentPermissionLevel.CAN_EDIT)
    client.log_text(run_id, "hello", "notes.txt")
    assert [f.path for f in client.list_artifacts(run_id)] == ["notes.txt"]


# -- registered models ---------------------------------------------------------

def grant_model(w, model_id, level):
    return w.model_registry.update_permissions(model_id, access_control_list=[
        ml.RegisteredModelAccessControlRequest(user_name=CAROL, permission_level=level)])


def test_registered_model_levels(server, carol):
    w = server.client()
    name = "guarded-model"
    w.model_registry.create_model(name)
    model_id = w.model_registry.get_model(name).registered_model_databricks.id
    assert model_id
    experiment_id = w.experiments.create_experiment(name="/Shared/model-runs").experiment_id
    source = w.experiments.create_run(experiment_id=experiment_id).run.info.artifact_uri + "/model"
    w.model_registry.create_model_version(name, source)

    refused(lambda: carol.model_registry.get_model(name),
            lambda: carol.model_registry.get_model_version(name, "1"),
            lambda: carol.model_registry.get_permissions(model_id))
    assert name not in [m.name for m in carol.model_registry.search_models()]
    assert name not in [v.name for v in carol.model_registry.search_model_versions()]

    grant_model(w, model_id, ml.RegisteredModelPermissionLevel.CAN_READ)
    got = carol.model_registry.get_model(name).registered_model_databricks
    assert (got.id, got.permission_level.value) == (model_id, "CAN_READ")
    assert name in [m.name for m in carol.model_registry.search_models()]
    assert carol.model_registry.get_model_version(name, "1").model_version.version == "1"
    refused(lambda: carol.model_registry.create_model_version(name, source),
            lambda: carol.model_registry.set_model_tag(name, "team", "risk"))

    grant_model(w, model_id, ml.RegisteredModelPermissionLevel.CAN_EDIT)
    assert carol.model_registry.create_model_version(name, source).model_version.version == "2"
    carol.model_registry.set_model_tag(name, "team", "risk")
    refused(lambda: carol.model_registry.transition_stage(name, "1", "Staging", False))

    grant_model(w, model_id, ml.RegisteredModelPermissionLevel.CAN_MANAGE_STAGING_VERSIONS)
    staged = carol.model_registry.transition_stage(name, "1", "Staging", False).model_version_databricks
    assert staged.current_stage == "Staging"
    refused(lambda: carol.model_registry.transition_stage(name, "1", "Production", False))

    grant_model(w, model_id, ml.RegisteredModelPermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS)
    carol.model_registry.transition_stage(name, "1", "Production", False)
    assert w.model_registry.get_model_version(name, "1").model_version.current_stage == "Production"
    refused(lambda: carol.model_registry.delete_model(name),
            lambda: carol.model_registry.set_permissions(model_id, access_control_list=[]))
    assert (CAROL, "CAN_MANAGE_PRODUCTION_VERSIONS", False) in levels(w.model_registry.get_permissions(model_id))

    grant_model(w, model_id, ml.RegisteredModelPermissionLevel.CAN_MANAGE)
    carol.model_registry.delete_model(name)
    with pytest.raises(NotFound):
        w.model_registry.get_model(name)


def test_registered_model_creator_owns_it(server, carol):
    carol.model_registry.create_model("carols-model")
    got = carol.model_registry.get_model("carols-model").registered_model_databricks
    assert got.permission_level.value == "CAN_MANAGE"
    assert (CAROL, "CAN_MANAGE", False) in levels(carol.model_registry.get_permissions(got.id))
    assert [p.permission_level.value for p in
            carol.model_registry.get_permission_levels(got.id).permission_levels] == [
        "CAN_READ", "CAN_EDIT", "CAN_MANAGE_STAGING_VERSIONS", "CAN_MANAGE_PRODUCTION_VERSIONS", "CAN_MANAGE"]


# -- the SQL warehouse ----------------------------------------------------------

def test_warehouse_levels(server, carol):
    w = server.client()
    warehouse_id = w.warehouses.list().__next__().id
    # Every user may use the warehouse tarn makes, as before.
    assert ("users", "CAN_USE", False) in levels(w.warehouses.get_permissions(warehouse_id))
    assert carol.warehouses.get(warehouse_id).id == warehouse_id
    refused(lambda: carol.warehouses.stop(warehouse_id),
            lambda: carol.warehouses.set_permissions(warehouse_id, access_control_list=[]))

    # Taken away, nothing is left to an ordinary user.
    w.warehouses.set_permissions(warehouse_id, access_control_list=[])
    refused(lambda: carol.warehouses.get(warehouse_id),
            lambda: carol.statement_execution.execute_statement(statement="SELECT 1", warehouse_id=warehouse_id))
    assert [wh.id for wh in carol.warehouses.list()] == []

    # CAN_VIEW sees it; running statements needs CAN_USE.
    w.warehouses.set_permissions(warehouse_id, access_control_list=[sql.WarehouseAccessControlRequest(
        user_name=CAROL, permission_level=sql.WarehousePermissionLevel.CAN_VIEW)])
    assert [wh.id for wh in carol.warehouses.list()] == [warehouse_id]
    refused(lambda: carol.statement_execution.execute_statement(statement="SELECT 1", warehouse_id=warehouse_id),
            lambda: carol.warehouses.start(warehouse_id))

    acl = w.warehouses.update_permissions(warehouse_id, access_control_list=[
        sql.WarehouseAccessControlRequest(group_name="users", permission_level=sql.WarehousePermissionLevel.CAN_USE)])
    assert {("users", "CAN_USE", False), (CAROL, "CAN_VIEW", False)} <= levels(acl)
    assert carol.warehouses.get(warehouse_id).id == warehouse_id
    assert [p.permission_level.value for p in w.warehouses.get_permission_levels(warehouse_id).permission_levels] == [
        "CAN_VIEW", "CAN_USE", "CAN_MONITOR", "CAN_MANAGE", "IS_OWNER"]


# -- notebooks and directories --------------------------------------------------

def put_notebook(w, path, text="print(1)\n"):
    w.workspace.import_(path, format=workspace.ImportFormat.SOURCE, language=workspace.Language.PYTHON,
                        overwrite=True, content=base64.b64encode(text.encode()).decode())


def grant_directory(w, object_id, level, principal=CAROL):
    return w.workspace.update_permissions("directories", str(object_id), access_control_list=[
        workspace.WorkspaceObjectAccessControlRequest(user_name=principal, permission_level=level)])


def test_directory_grants_reach_notebooks_inside(server, carol):
    w = server.client()
    w.workspace.mkdirs("/Projects/secret/inner")
    put_notebook(w, "/Projects/secret/inner/nb")
    put_notebook(w, "/Projects/secret/top")
    put_notebook(w, "/Projects/other")
    secret = w.workspace.get_status("/Projects/secret").object_id
    notebook = w.workspace.get_status("/Projects/secret/inner/nb").object_id

    refused(lambda: carol.workspace.get_status("/Projects/secret/inner/nb"),
            lambda: carol.workspace.export("/Projects/secret/inner/nb"),
            lambda: list(carol.workspace.list("/Projects/secret")),
            lambda: put_notebook(carol, "/Projects/secret/new"),
            lambda: carol.workspace.get_permissions("notebooks", str(notebook)))

    # CAN_READ on the directory reaches the notebook two levels down.
    grant_directory(w, secret, workspace.WorkspaceObjectPermissionLevel.CAN_READ)
    assert carol.workspace.get_status("/Projects/secret/inner/nb").object_id == notebook
    exported = carol.workspace.export("/Projects/secret/inner/nb", format=workspace.ExportFormat.SOURCE)
    assert b"print(1)" in base64.b64decode(exported.content)
    assert sorted(o.path for o in carol.workspace.list("/Projects/secret")) == [
        "/Projects/secret/inner", "/Projects/secret/top"]
    acl = carol.workspace.get_permissions("notebooks", str(notebook))
    assert (CAROL, "CAN_READ", True) in levels(acl)
    inherited = [p for a in acl.access_control_list if a.user_name == CAROL for p in a.all_permissions]
    assert inherited[0].inherited_from_object == [f"/directories/{secret}"]
    refused(lambda: put_notebook(carol, "/Projects/secret/new"),
            lambda: put_notebook(carol, "/Projects/secret/inner/nb", "print(2)\n"),
            lambda: carol.workspace.delete("/Projects/secret/top"))

    # CAN_EDIT writes into it and over what is there; deleting needs CAN_MANAGE.
    grant_directory(w, secret, workspace.WorkspaceObjectPermissionLevel.CAN_EDIT)
    put_notebook(carol, "/Projects/secret/new")
    put_notebook(carol, "/Projects/secret/inner/nb", "print(2)\n")
    carol.workspace.mkdirs("/Projects/secret/carols")
    refused(lambda: carol.workspace.delete("/Projects/secret/top"))
    # What carol made is hers.
    carol.workspace.delete("/Projects/secret/new")

    # A direct grant on one notebook outside, and the parent's list shows only it.
    other = w.workspace.get_status("/Projects/other").object_id
    w.workspace.set_permissions("notebooks", str(other), access_control_list=[
        workspace.WorkspaceObjectAccessControlRequest(
            user_name=CAROL, permission_level=workspace.WorkspaceObjectPermissionLevel.CAN_RUN)])
    assert (CAROL, "CAN_RUN", False) in levels(w.workspace.get_permissions("notebooks", str(other)))
    assert carol.workspace.get_status("/Projects/other").object_id == other
    refused(lambda: list(carol.workspace.list("/Projects")))

    grant_directory(w, secret, workspace.WorkspaceObjectPermissionLevel.CAN_MANAGE)
    carol.workspace.delete("/Projects/secret/top")
    with pytest.raises(NotFound):
        w.workspace.get_status("/Projects/secret/top")


def test_homes_are_their_users_and_shared_is_everyones(server, carol):
    w = server.client()
    carol.workspace.mkdirs(f"/Users/{CAROL}/work")
    put_notebook(carol, f"/Users/{CAROL}/work/nb")
    home = carol.workspace.get_status(f"/Users/{CAROL}").object_id
    assert (CAROL, "CAN_MANAGE", False) in levels(carol.workspace.get_permissions("directories", str(home)))
    # Another user sees nothing of it; admins see everything.
    erin = server.client(server.cli_token("erin@example.com"))
    refused(lambda: list(erin.workspace.list(f"/Users/{CAROL}")),
            lambda: erin.workspace.get_status(f"/Users/{CAROL}/work/nb"),
            lambda: erin.workspace.delete(f"/Users/{CAROL}/work/nb"))
    assert w.workspace.get_status(f"/Users/{CAROL}/work/nb").object_type == workspace.ObjectType.NOTEBOOK
    # Sharing the home's folder with a group reaches its members.
    w.groups.create(display_name="readers-of-carol",
                    members=[iam.ComplexValue(value=erin.current_user.me().id)])
    carol.workspace.update_permissions("directories", str(home), access_control_list=[
        workspace.WorkspaceObjectAccessControlRequest(
            group_name="readers-of-carol", permission_level=workspace.WorkspaceObjectPermissionLevel.CAN_READ)])
    assert [o.path for o in erin.workspace.list(f"/Users/{CAROL}/work")] == [f"/Users/{CAROL}/work/nb"]
    # /Shared is every user's to manage.
    erin.workspace.mkdirs("/Shared/erins")
    put_notebook(erin, "/Shared/erins/nb")
    carol.workspace.delete("/Shared/erins", recursive=True)
    assert "/Shared/erins" not in [o.path for o in w.workspace.list("/Shared")]


def test_a_missing_repo_has_no_permissions(server):
    # Repos' permissions are test_repos.py's.
    with pytest.raises(NotFound):
        server.client().permissions.get("repos", "1")
