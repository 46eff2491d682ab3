"""The Permissions API through databricks-sdk (`w.jobs.get_permissions`,
`set_permissions`, `update_permissions`, `get_permission_levels` and the
generic `w.permissions`), enforced on jobs and their runs: an admin, a
user given levels directly, and a group's member."""

import base64
import datetime

import pytest
from conftest import own_server
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
)
from databricks.sdk.service import iam, jobs, workspace

WAIT = datetime.timedelta(minutes=3)


@pytest.fixture(scope="module")
def server():
    yield from own_server("tarn-permissions-")


@pytest.fixture(scope="module")
def job_id(server):
    w = server.client()
    w.workspace.mkdirs("/Shared/perm")
    w.workspace.import_("/Shared/perm/wait.py", format=workspace.ImportFormat.AUTO, overwrite=True,
                        content=base64.b64encode(b"import time\ntime.sleep(60)\n").decode())
    return w.jobs.create(name="guarded", tasks=[jobs.Task(
        task_key="wait", spark_python_task=jobs.SparkPythonTask(python_file="/Shared/perm/wait.py"))]).job_id


def levels(acl):
    return {(a.user_name or a.group_name or a.service_principal_name, p.permission_level.value, bool(p.inherited))
            for a in acl.access_control_list for p in a.all_permissions}


def test_levels_allow_and_refuse_what_they_should(server, job_id):
    w = server.client()
    carol = server.client(server.cli_token("carol@example.com"))
    with pytest.raises(PermissionDenied):
        carol.jobs.get(job_id)
    assert job_id not in [j.job_id for j in carol.jobs.list()]
    with pytest.raises(PermissionDenied):
        carol.jobs.get_permissions(str(job_id))

    w.jobs.set_permissions(str(job_id), access_control_list=[
        jobs.JobAccessControlRequest(user_name="carol@example.com", permission_level=jobs.JobPermissionLevel.CAN_VIEW)])
    assert carol.jobs.get(job_id).settings.name == "guarded"
    assert job_id in [j.job_id for j in carol.jobs.list()]
    for forbidden in [lambda: carol.jobs.run_now(job_id),
                      lambda: carol.jobs.update(job_id, new_settings=jobs.JobSettings(name="mine")),
                      lambda: carol.jobs.delete(job_id),
                      lambda: carol.jobs.update_permissions(str(job_id), access_control_list=[])]:
        with pytest.raises(PermissionDenied):
            forbidden()

    # CAN_MANAGE_RUN runs and cancels, and still cannot edit or delete.
    w.jobs.update_permissions(str(job_id), access_control_list=[jobs.JobAccessControlRequest(
        user_name="carol@example.com", permission_level=jobs.JobPermissionLevel.CAN_MANAGE_RUN)])
    run = carol.jobs.run_now(job_id)
    assert carol.jobs.get_run(run.run_id).job_id == job_id
    assert run.run_id in [r.run_id for r in carol.jobs.list_runs(job_id=job_id)]
    carol.jobs.cancel_run(run.run_id)
    finished = w.jobs.wait_get_run_job_terminated_or_skipped(run.run_id, timeout=WAIT)
    assert finished.state.result_state == jobs.RunResultState.CANCELED
    with pytest.raises(PermissionDenied):
        carol.jobs.update(job_id, new_settings=jobs.JobSettings(name="mine"))
    with pytest.raises(PermissionDenied):
        carol.jobs.delete_run(run.run_id)

    # A group's level reaches its members.
    dave = server.client(server.cli_token("dave@example.com"))
    dave_id = dave.current_user.me().id
    w.groups.create(display_name="ops", members=[iam.ComplexValue(value=dave_id)])
    with pytest.raises(PermissionDenied):
        dave.jobs.get(job_id)
    w.jobs.update_permissions(str(job_id), access_control_list=[
        jobs.JobAccessControlRequest(group_name="ops", permission_level=jobs.JobPermissionLevel.CAN_MANAGE)])
    dave.jobs.update(job_id, new_settings=jobs.JobSettings(max_concurrent_runs=2))
    assert w.jobs.get(job_id).settings.max_concurrent_runs == 2

    acl = w.jobs.get_permissions(str(job_id))
    assert acl.object_id == f"/jobs/{job_id}" and acl.object_type == "job"
    assert levels(acl) == {("admin", "IS_OWNER", False), ("carol@example.com", "CAN_MANAGE_RUN", False),
                           ("ops", "CAN_MANAGE", False), ("admins", "CAN_MANAGE", True)}
    assert levels(w.permissions.get("jobs", str(job_id))) == levels(acl)
    assert [l.permission_level.value for l in w.jobs.get_permission_levels(str(job_id)).permission_levels] == [
        "CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE", "IS_OWNER"]

    # PUT replaces the direct entries; the owner stays.
    dave.jobs.set_permissions(str(job_id), access_control_list=[])
    assert levels(w.jobs.get_permissions(str(job_id))) == {("admin", "IS_OWNER", False), ("admins", "CAN_MANAGE", True)}
    with pytest.raises(PermissionDenied):
        carol.jobs.get(job_id)


def test_the_creator_owns_and_admins_see_all(server):
    w = server.client()
    erin = server.client(server.cli_token("erin@example.com"))
    frank = server.client(server.cli_token("frank@example.com"))
    mine = erin.jobs.create(name="erins").job_id
    assert levels(erin.jobs.get_permissions(str(mine))) >= {("erin@example.com", "IS_OWNER", False)}
    assert w.jobs.get(mine).creator_user_name == "erin@example.com"
    assert mine in [j.job_id for j in w.jobs.list()] and mine not in [j.job_id for j in frank.jobs.list()]
    # Ownership moves with an IS_OWNER entry.
    erin.jobs.set_permissions(str(mine), access_control_list=[
        jobs.JobAccessControlRequest(user_name="frank@example.com", permission_level=jobs.JobPermissionLevel.IS_OWNER)])
    assert ("frank@example.com", "IS_OWNER", False) in levels(frank.jobs.get_permissions(str(mine)))
    with pytest.raises(PermissionDenied):
        erin.jobs.get(mine)
    frank.jobs.delete(mine)


def test_bad_input(server, job_id):
    w = server.client()
    with pytest.raises(InvalidParameterValue, match="not one of"):
        w.api_client.do("PATCH", f"/api/2.0/permissions/jobs/{job_id}", body={
            "access_control_list": [{"user_name": "admin", "permission_level": "CAN_ATTACH_TO"}]})
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        w.jobs.update_permissions(str(job_id), access_control_list=[jobs.JobAccessControlRequest(
            user_name="nobody@example.com", permission_level=jobs.JobPermissionLevel.CAN_VIEW)])
    with pytest.raises(InvalidParameterValue, match="one owner"):
        w.jobs.update_permissions(str(job_id), access_control_list=[jobs.JobAccessControlRequest(
            group_name="users", permission_level=jobs.JobPermissionLevel.IS_OWNER)])
    with pytest.raises(BadRequest, match="not a permissions object type"):
        w.permissions.get("gizmos", "1")
    with pytest.raises(NotFound):
        w.permissions.get("repos", "1")
    with pytest.raises(InvalidParameterValue):
        w.jobs.get_permissions("999999")
    assert ("admin", "IS_OWNER", False) in levels(w.jobs.get_permissions(str(job_id)))


def spark_count(url):
    """Rows of a small range through a Spark Connect session at `url`."""
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(url).create()
    try:
        return session.range(3).count()
    finally:
        session.stop()


def test_cluster_levels_guard_attach_restart_and_manage(server):
    from databricks.sdk.service import compute

    w = server.client()
    gina_token = server.cli_token("gina@example.com")
    gina = server.client(gina_token)
    cluster = w.clusters.create_and_wait(cluster_name="guarded", spark_version="16.4.x-scala2.13", num_workers=0,
                                         timeout=WAIT)
    cid = cluster.cluster_id
    try:
        with pytest.raises(PermissionDenied):
            gina.clusters.get(cid)
        assert cid not in [c.cluster_id for c in gina.clusters.list()]
        with pytest.raises(PermissionDenied):
            gina.command_execution.create(cluster_id=cid, language=compute.Language.PYTHON)
        url = w.clusters.get(cid).default_tags["SparkConnectUrl"] + f";token={gina_token}"
        with pytest.raises(Exception, match="does not have CAN_ATTACH_TO"):
            spark_count(url)

        w.clusters.set_permissions(cid, access_control_list=[compute.ClusterAccessControlRequest(
            user_name="gina@example.com", permission_level=compute.ClusterPermissionLevel.CAN_ATTACH_TO)])
        assert gina.clusters.get(cid).cluster_name == "guarded"
        assert cid in [c.cluster_id for c in gina.clusters.list()]
        context = gina.command_execution.create_and_wait(cluster_id=cid, language=compute.Language.PYTHON,
                                                         timeout=WAIT)
        done = gina.command_execution.execute_and_wait(cluster_id=cid, context_id=context.id, command="6 * 7",
                                                       language=compute.Language.PYTHON, timeout=WAIT)
        assert done.results.data == "42"
        assert spark_count(url) == 3
        gina.command_execution.destroy(cluster_id=cid, context_id=context.id)
        for forbidden in [lambda: gina.clusters.restart(cid), lambda: gina.clusters.delete(cid),
                          lambda: gina.clusters.permanent_delete(cid)]:
            with pytest.raises(PermissionDenied):
                forbidden()

        w.clusters.update_permissions(cid, access_control_list=[compute.ClusterAccessControlRequest(
            user_name="gina@example.com", permission_level=compute.ClusterPermissionLevel.CAN_RESTART)])
        gina.clusters.delete_and_wait(cid, timeout=WAIT)
        with pytest.raises(PermissionDenied):
            gina.clusters.edit(cid, spark_version="16.4.x-scala2.13", num_workers=0, cluster_name="mine")
        assert {(a.user_name or a.group_name, p.permission_level.value) for a in
                w.clusters.get_permissions(cid).access_control_list for p in a.all_permissions} == {
            ("admin", "CAN_MANAGE"), ("gina@example.com", "CAN_RESTART"), ("admins", "CAN_MANAGE")}
    finally:
        w.clusters.permanent_delete(cid)


def test_pipeline_levels_guard_view_run_and_manage(server):
    import io

    from databricks.sdk.service.pipelines import (
        FileLibrary,
        PipelineAccessControlRequest,
        PipelineLibrary,
        PipelinePermissionLevel,
    )

    w = server.client()
    ivan = server.client(server.cli_token("ivan@example.com"))
    w.workspace.upload("/Shared/perm/p.py", io.BytesIO(b"import dlt\n\n@dlt.table\ndef one():\n    return spark.range(1)\n"),
                       format=workspace.ImportFormat.RAW, overwrite=True)
    pid = w.pipelines.create(name="guarded-pipeline", catalog="main", schema="default",
                             libraries=[PipelineLibrary(file=FileLibrary(path="/Shared/perm/p.py"))]).pipeline_id
    with pytest.raises(PermissionDenied):
        ivan.pipelines.get(pid)
    assert pid not in [p.pipeline_id for p in ivan.pipelines.list_pipelines()]
    w.pipelines.set_permissions(pid, access_control_list=[PipelineAccessControlRequest(
        user_name="ivan@example.com", permission_level=PipelinePermissionLevel.CAN_VIEW)])
    assert ivan.pipelines.get(pid).name == "guarded-pipeline"
    assert pid in [p.pipeline_id for p in ivan.pipelines.list_pipelines()]
    for forbidden in [lambda: ivan.pipelines.start_update(pid), lambda: ivan.pipelines.stop(pid),
                      lambda: ivan.pipelines.delete(pid)]:
        with pytest.raises(PermissionDenied):
            forbidden()
    w.pipelines.update_permissions(pid, access_control_list=[PipelineAccessControlRequest(
        user_name="ivan@example.com", permission_level=PipelinePermissionLevel.CAN_RUN)])
    update_id = ivan.pipelines.start_update(pid, validate_only=True).update_id
    assert ivan.pipelines.get_update(pid, update_id).update.update_id == update_id
    with pytest.raises(PermissionDenied):
        ivan.pipelines.delete(pid)
    assert ("admin", "IS_OWNER", False) in levels(w.pipelines.get_permissions(pid))
    w.pipelines.delete(pid)
