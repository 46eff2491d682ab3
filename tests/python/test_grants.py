"""Unity Catalog grants through databricks-sdk (`w.grants`), SQL
(`GRANT`, `REVOKE`, `SHOW GRANTS` on the warehouse), and PySpark: a
principal with SELECT reads a table by name from a statement and from a
Spark Connect session and cannot write it; one without cannot read it by
name or by its storage path; volumes' files need READ VOLUME and WRITE
VOLUME; tables a user creates are the user's."""

import datetime
import io

import pytest
from conftest import own_server
from databricks.sdk.errors import BadRequest, InvalidParameterValue, NotImplemented as SdkNotImplemented, PermissionDenied
from databricks.sdk.service import catalog, compute, iam
from databricks.sdk.service.sql import StatementState

WAIT = datetime.timedelta(minutes=3)
BOB, CAROL = "bob@example.com", "carol@example.com"


@pytest.fixture(scope="module")
def server():
    yield from own_server("tarn-grants-")


def run(w, statement):
    (warehouse,) = list(w.warehouses.list())
    return w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse.id,
                                                   wait_timeout="50s")


def rows(w, statement):
    r = run(w, statement)
    assert r.status.state == StatementState.SUCCEEDED, r.status
    return r.result.data_array or []


def refused(w, statement):
    r = run(w, statement)
    assert r.status.state == StatementState.FAILED, r.status
    return r.status.error.message


@pytest.fixture(scope="module")
def setup(server):
    w = server.client()
    w.schemas.create(name="sales", catalog_name="main")
    rows(w, "CREATE TABLE main.sales.orders (id INT, amount DOUBLE)")
    rows(w, "INSERT INTO main.sales.orders VALUES (1, 10.5), (2, 20.0), (3, 7.25)")
    w.volumes.create(catalog_name="main", schema_name="sales", name="landing",
                     volume_type=catalog.VolumeType.MANAGED)
    w.files.upload("/Volumes/main/sales/landing/a.csv", io.BytesIO(b"id\n1\n"))
    bob, carol = (server.client(server.cli_token(u)) for u in (BOB, CAROL))
    w.groups.create(display_name="analysts", members=[iam.ComplexValue(value=bob.current_user.me().id)])
    return w, bob, carol


def grant(w, securable, name, principal, *privileges, remove=False):
    change = catalog.PermissionsChange(principal=principal, **{"remove" if remove else "add": list(privileges)})
    return w.grants.update(securable, name, changes=[change])


def test_rest_catalog_objects_follow_grants(setup):
    w, bob, _ = setup
    with pytest.raises(PermissionDenied, match="USE SCHEMA"):
        bob.tables.get("main.sales.orders")
    assert "orders" not in [t.name for t in bob.tables.list(catalog_name="main", schema_name="sales")]
    assert "sales" not in [s.name for s in bob.schemas.list(catalog_name="main")]

    grant(w, "schema", "main.sales", "analysts", catalog.Privilege.USE_SCHEMA)
    with pytest.raises(PermissionDenied, match="any privilege"):
        bob.tables.get("main.sales.orders")
    updated = grant(w, "table", "main.sales.orders", BOB, catalog.Privilege.SELECT)
    assert [(a.principal, [p.value for p in a.privileges]) for a in updated.privilege_assignments] == [
        (BOB, ["SELECT"])]
    assert bob.tables.get("main.sales.orders").owner == "admin"
    assert "orders" in [t.name for t in bob.tables.list(catalog_name="main", schema_name="sales")]
    got = w.grants.get("table", "main.sales.orders", principal=BOB)
    assert [a.principal for a in got.privilege_assignments] == [BOB]

    # A privilege on the schema reaches its tables, and says where it came from.
    grant(w, "schema", "main.sales", "analysts", catalog.Privilege.MODIFY)
    effective = w.grants.get_effective("table", "main.sales.orders", principal="analysts")
    (held,) = effective.privilege_assignments
    assert [(p.privilege.value, p.inherited_from_type.value, p.inherited_from_name) for p in held.privileges] == [
        ("MODIFY", "SCHEMA", "main.sales")]
    grant(w, "schema", "main.sales", "analysts", catalog.Privilege.MODIFY, remove=True)
    assert w.grants.get_effective("table", "main.sales.orders", principal="analysts").privilege_assignments == []

    # Only an owner, a container's owner or a holder of MANAGE grants.
    with pytest.raises(PermissionDenied):
        grant(bob, "table", "main.sales.orders", BOB, catalog.Privilege.MODIFY)
    with pytest.raises(PermissionDenied):
        bob.tables.delete("main.sales.orders")


def test_statements_read_with_select_and_write_with_modify(setup):
    w, bob, carol = setup
    assert rows(bob, "SELECT count(*) FROM main.sales.orders") == [["3"]]
    assert "MODIFY on Table 'main.sales.orders'" in refused(bob, "INSERT INTO main.sales.orders VALUES (4, 1.0)")
    assert "USE SCHEMA" in refused(carol, "SELECT * FROM main.sales.orders")
    assert "USE SCHEMA" in refused(carol, "SELECT * FROM sales.orders")  # resolved in main

    # What a user creates, the user owns; others see nothing of it until granted.
    rows(bob, "CREATE TABLE main.default.bobs AS SELECT * FROM main.sales.orders")
    assert w.tables.get("main.default.bobs").owner == BOB
    assert rows(bob, "SELECT sum(amount) FROM main.default.bobs") == [["37.75"]]
    assert "SELECT on Table 'main.default.bobs'" in refused(carol, "SELECT * FROM main.default.bobs")
    rows(bob, f"GRANT SELECT ON TABLE main.default.bobs TO `{CAROL}`")
    assert rows(carol, "SELECT count(*) FROM default.bobs") == [["3"]]
    shown = rows(bob, "SHOW GRANTS ON TABLE main.default.bobs")
    assert [BOB, "OWN", "TABLE", "main.default.bobs"] in shown
    assert [CAROL, "SELECT", "TABLE", "main.default.bobs"] in shown
    rows(bob, f"REVOKE SELECT ON main.default.bobs FROM `{CAROL}`")
    assert "SELECT on Table" in refused(carol, "SELECT * FROM main.default.bobs")
    assert "INSUFFICIENT_PERMISSIONS" in refused(bob, f"GRANT MODIFY ON TABLE main.sales.orders TO `{BOB}`")


def test_a_spark_session_reads_with_select_and_cannot_write_or_read_files(server, setup):
    w, bob, carol = setup
    cluster = w.clusters.create_and_wait(cluster_name="shared", spark_version="16.4.x-scala2.13", num_workers=0,
                                         timeout=WAIT)
    try:
        w.clusters.set_permissions(cluster.cluster_id, access_control_list=[compute.ClusterAccessControlRequest(
            group_name="users", permission_level=compute.ClusterPermissionLevel.CAN_ATTACH_TO)])
        from pyspark.sql import SparkSession

        def session(user):
            url = cluster.default_tags["SparkConnectUrl"] + f";token={server.cli_token(user)}"
            s = SparkSession.builder.remote(url).create()
            server.sessions.append(s)
            return s

        spark = session(BOB)
        assert spark.table("main.sales.orders").count() == 3
        assert spark.sql("SELECT max(amount) AS m FROM main.sales.orders").first().m == 20.0
        with pytest.raises(Exception, match="MODIFY"):
            spark.sql("INSERT INTO main.sales.orders VALUES (5, 1.0)").collect()
        with pytest.raises(Exception, match="MODIFY"):
            spark.createDataFrame([(6, 2.0)], "id INT, amount DOUBLE").write.mode("append").saveAsTable(
                "main.sales.orders")
        location = w.tables.get("main.sales.orders").storage_location
        with pytest.raises(Exception, match="by path"):
            spark.read.format("delta").load(location).count()
        with pytest.raises(Exception, match="by path"):
            spark.sql(f"SELECT * FROM delta.`{location}`").collect()
        spark.sql("USE SCHEMA main.sales")
        assert spark.table("orders").count() == 3

        # A table written from PySpark is its writer's.
        spark.range(4).write.saveAsTable("main.default.from_spark")
        assert w.tables.get("main.default.from_spark").owner == BOB

        other = session(CAROL)
        with pytest.raises(Exception, match="USE SCHEMA"):
            other.table("main.sales.orders").count()
        with pytest.raises(Exception, match="USE SCHEMA"):
            other.table("main.sales.orders").columns  # a schema is the table's metadata
        with pytest.raises(Exception, match="SELECT on Table 'main.default.from_spark'"):
            other.table("main.default.from_spark").count()
        assert rows(w, "SELECT count(*) FROM main.sales.orders") == [["3"]]
    finally:
        w.clusters.permanent_delete(cluster.cluster_id)


def test_volume_files_need_read_and_write_volume(setup):
    w, bob, _ = setup
    path = "/Volumes/main/sales/landing/a.csv"
    with pytest.raises(PermissionDenied, match="READ VOLUME"):
        bob.files.download(path)
    grant(w, "volume", "main.sales.landing", "analysts", catalog.Privilege.READ_VOLUME)
    assert bob.files.download(path).contents.read() == b"id\n1\n"
    assert [e.name for e in bob.files.list_directory_contents("/Volumes/main/sales/landing")] == ["a.csv"]
    with pytest.raises(PermissionDenied, match="WRITE VOLUME"):
        bob.files.upload("/Volumes/main/sales/landing/b.csv", io.BytesIO(b"x"))
    grant(w, "volume", "main.sales.landing", BOB, catalog.Privilege.WRITE_VOLUME)
    bob.files.upload("/Volumes/main/sales/landing/b.csv", io.BytesIO(b"x"))
    assert w.files.download("/Volumes/main/sales/landing/b.csv").contents.read() == b"x"


def test_a_service_principal_holds_what_it_is_granted(server, setup):
    w, _, _ = setup
    sp = w.service_principals.create(display_name="etl", entitlements=[iam.ComplexValue(value="workspace-access")])
    obo = w.token_management.create_obo_token(application_id=sp.application_id, lifetime_seconds=3600)
    etl = server.client(obo.token_value)
    assert "USE SCHEMA" in refused(etl, "SELECT * FROM main.sales.orders")
    grant(w, "schema", "main.sales", sp.application_id, catalog.Privilege.USE_SCHEMA, catalog.Privilege.SELECT)
    assert rows(etl, "SELECT count(*) FROM main.sales.orders") == [["3"]]
    assert "MODIFY" in refused(etl, "DELETE FROM main.sales.orders WHERE id = 1")


def test_bad_grants_are_refused(setup):
    w, _, _ = setup
    with pytest.raises((InvalidParameterValue, BadRequest), match="not applicable"):
        grant(w, "table", "main.sales.orders", BOB, catalog.Privilege.USE_CATALOG)
    with pytest.raises((InvalidParameterValue, BadRequest), match="Could not find principal"):
        grant(w, "table", "main.sales.orders", "nobody@example.com", catalog.Privilege.SELECT)
    with pytest.raises((InvalidParameterValue, BadRequest), match="not a securable type"):
        w.grants.get("planet", "main")
    with pytest.raises(SdkNotImplemented):
        w.grants.get("metastore", "x")
    # Nothing half-applied: the valid change in a refused request did not land.
    with pytest.raises((InvalidParameterValue, BadRequest)):
        w.grants.update("table", "main.sales.orders", changes=[
            catalog.PermissionsChange(principal=CAROL, add=[catalog.Privilege.SELECT]),
            catalog.PermissionsChange(principal=CAROL, add=[catalog.Privilege.CREATE_SCHEMA])])
    assert w.grants.get("table", "main.sales.orders", principal=CAROL).privilege_assignments == []


def test_jobs_run_as_their_run_as_principal_with_its_grants(server, setup):
    import base64

    from databricks.sdk.service import jobs, workspace

    w, bob, carol = setup
    sp = w.service_principals.create(display_name="nightly")
    grant(w, "schema", "main.sales", sp.application_id, catalog.Privilege.USE_SCHEMA, catalog.Privilege.SELECT)
    w.workspace.mkdirs("/Shared/run_as")
    for name, code in [("read.py", "print(spark.table('main.sales.orders').count())\n"),
                       ("write.py", "spark.sql('INSERT INTO main.sales.orders VALUES (9, 1.0)').collect()\n")]:
        w.workspace.import_(f"/Shared/run_as/{name}", format=workspace.ImportFormat.AUTO, overwrite=True,
                            content=base64.b64encode(code.encode()).decode())

    def job(client, file, run_as=None):
        task = jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=f"/Shared/run_as/{file}"))
        return client.jobs.create(name=file, tasks=[task], run_as=run_as).job_id

    def outcome(client, job_id):
        started = client.jobs.run_now(job_id)
        run = client.jobs.wait_get_run_job_terminated_or_skipped(started.run_id, timeout=WAIT)
        output = client.jobs.get_run_output(run.tasks[0].run_id)
        return run, output

    def run_as_of(run):
        # databricks-sdk 0.156 does not read a run's run_as_user_name.
        return server.raw("GET", f"/api/2.1/jobs/runs/get?run_id={run.run_id}").json()["run_as_user_name"]

    as_sp = jobs.JobRunAs(service_principal_name=sp.application_id)
    reader = job(w, "read.py", as_sp)
    assert w.jobs.get(reader).run_as_user_name == sp.application_id
    run, output = outcome(w, reader)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, output.error
    assert run_as_of(run) == sp.application_id
    assert output.logs.strip().endswith("3")

    run, output = outcome(w, job(w, "write.py", as_sp))
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert "MODIFY on Table 'main.sales.orders'" in output.error

    # Without run_as a job runs as its owner, with the owner's grants.
    run, output = outcome(carol, job(carol, "read.py"))
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert run_as_of(run) == CAROL and "USE SCHEMA" in output.error

    # A job's run-as principal must be able to read what its tasks run.
    bob.workspace.mkdirs(f"/Users/{BOB}/private")
    bob.workspace.import_(f"/Users/{BOB}/private/read.py", format=workspace.ImportFormat.AUTO, overwrite=True,
                          content=base64.b64encode(b"print('hello')\n").decode())
    task = jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=f"/Users/{BOB}/private/read.py"))
    run, output = outcome(carol, carol.jobs.create(name="peek", tasks=[task]).job_id)
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert "does not have CAN_READ" in output.error, output.error

    # Only an admin makes a job run as someone else.
    with pytest.raises(PermissionDenied, match="Only admins"):
        job(bob, "read.py", as_sp)
    with pytest.raises((InvalidParameterValue, BadRequest), match="does not exist"):
        job(w, "read.py", jobs.JobRunAs(user_name="ghost@example.com"))


def test_pipelines_run_as_their_owner_or_run_as_principal(server, setup):
    from databricks.sdk.service.pipelines import FileLibrary, PipelineLibrary, RunAs
    from databricks.sdk.service.workspace import ImportFormat
    from test_pipelines import finish

    w, _, carol = setup
    sp = w.service_principals.create(display_name="refresher")
    grant(w, "schema", "main.sales", sp.application_id, catalog.Privilege.USE_SCHEMA, catalog.Privilege.SELECT)
    folder = f"/Users/{CAROL}/totals"
    carol.workspace.mkdirs(folder)
    sql = b"CREATE OR REFRESH MATERIALIZED VIEW totals AS SELECT sum(amount) AS s FROM main.sales.orders;\n"
    carol.workspace.upload(f"{folder}/totals.sql", io.BytesIO(sql), format=ImportFormat.RAW, overwrite=True)
    spec = dict(name="totals", catalog="main", schema="default",
                libraries=[PipelineLibrary(file=FileLibrary(path=f"{folder}/totals.sql"))])
    pipeline_id = carol.pipelines.create(**spec).pipeline_id

    # Its owner's grants: carol may not read main.sales.
    update_id = carol.pipelines.start_update(pipeline_id).update_id
    assert finish(carol, pipeline_id, update_id) == "FAILED"
    messages = [e.message for e in carol.pipelines.list_pipeline_events(pipeline_id)]
    assert any("USE SCHEMA on Schema 'main.sales'" in m for m in messages), messages

    as_sp = RunAs(service_principal_name=sp.application_id)
    with pytest.raises(PermissionDenied, match="Only admins"):
        carol.pipelines.update(pipeline_id, run_as=as_sp, **spec)
    w.pipelines.update(pipeline_id, run_as=as_sp, **spec)
    assert carol.pipelines.get(pipeline_id).run_as_user_name == sp.application_id
    update_id = carol.pipelines.start_update(pipeline_id).update_id
    assert finish(carol, pipeline_id, update_id) == "COMPLETED", [
        e.message for e in carol.pipelines.list_pipeline_events(pipeline_id)]
    assert rows(w, "SELECT s FROM main.default.totals") == [["37.75"]]
    assert w.tables.get("main.default.totals").owner == sp.application_id
