"""Secrets through databricks-sdk's `w.secrets` and `dbutils.secrets`:
scopes, string and bytes values, ACLs between an admin and a user, the
limits and errors Databricks has, values sealed at rest (a scan of
TARN_HOME finds none), and redaction in a context's results."""

import base64
import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import own_server
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    NotFound,
    NotImplemented as SdkNotImplemented,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from databricks.sdk.service import iam
from databricks.sdk.service.compute import CommandStatus, Language, ResultType
from databricks.sdk.service.workspace import AclPermission

VALUE = "s3cr3t-Pa55w0rd-7f1c"
VAULT_TOKEN = "hvs.test-root-token"
WAIT = datetime.timedelta(minutes=3)


@pytest.fixture(scope="module")
def server():
    yield from own_server("tarn-secrets-", {"TARN_VAULT_TOKEN": VAULT_TOKEN, "TARN_TEST_APP_DB_URL": "postgres://svc@db/app"})


def user_client(server, name):
    return server.client(server.cli_token(name))


def test_scopes_values_and_acls(server):
    w = server.client()
    w.secrets.create_scope("app")
    w.secrets.put_secret("app", "db-password", string_value=VALUE)
    w.secrets.put_secret("app", "cert.der", bytes_value=base64.b64encode(b"\x00\xffbin").decode())
    assert base64.b64decode(w.secrets.get_secret("app", "db-password").value).decode() == VALUE
    assert base64.b64decode(w.secrets.get_secret("APP", "cert.der").value) == b"\x00\xffbin"
    listed = list(w.secrets.list_secrets("app"))
    assert [s.key for s in listed] == ["cert.der", "db-password"] and all(s.last_updated_timestamp for s in listed)
    assert "app" in [s.name for s in w.secrets.list_scopes()]
    assert [(a.principal, a.permission) for a in w.secrets.list_acls("app")] == [("admin", AclPermission.MANAGE)]

    dana = user_client(server, "dana@example.com")
    with pytest.raises(PermissionDenied):
        dana.secrets.get_secret("app", "db-password")
    with pytest.raises(PermissionDenied):
        list(dana.secrets.list_secrets("app"))
    w.secrets.put_acl("app", "dana@example.com", AclPermission.READ)
    assert base64.b64decode(dana.secrets.get_secret("app", "db-password").value).decode() == VALUE
    with pytest.raises(PermissionDenied):
        dana.secrets.put_secret("app", "x", string_value="y")
    with pytest.raises(PermissionDenied):
        dana.secrets.put_acl("app", "dana@example.com", AclPermission.MANAGE)
    # A group's ACL reaches its members.
    dana_id = dana.current_user.me().id
    from databricks.sdk.service import iam
    w.groups.create(display_name="writers", members=[iam.ComplexValue(value=dana_id)])
    w.secrets.put_acl("app", "writers", AclPermission.WRITE)
    dana.secrets.put_secret("app", "token", string_value="from-dana")
    dana.secrets.delete_secret("app", "token")
    assert w.secrets.get_acl("app", "writers").permission == AclPermission.WRITE
    w.secrets.delete_acl("app", "writers")
    w.secrets.delete_acl("app", "dana@example.com")
    with pytest.raises(PermissionDenied):
        dana.secrets.get_secret("app", "db-password")

    # A user's own scope is theirs to manage, not others' to read.
    dana.secrets.create_scope("dana-scope")
    dana.secrets.put_secret("dana-scope", "k", string_value="v")
    assert [a.principal for a in dana.secrets.list_acls("dana-scope")] == ["dana@example.com"]
    dana.secrets.delete_scope("dana-scope")


def test_limits_and_errors(server):
    w = server.client()
    w.secrets.create_scope("limits")
    with pytest.raises(ResourceAlreadyExists):
        w.secrets.create_scope("LIMITS")
    with pytest.raises(InvalidParameterValue, match="Secret key"):
        w.secrets.put_secret("limits", "bad key!", string_value="x")
    with pytest.raises(InvalidParameterValue, match="Secret key"):
        w.secrets.put_secret("limits", "k" * 129, string_value="x")
    with pytest.raises(InvalidParameterValue, match="128 KB"):
        w.secrets.put_secret("limits", "big", string_value="x" * (128 * 1024 + 1))
    w.secrets.put_secret("limits", "edge", string_value="x" * (128 * 1024))
    with pytest.raises(InvalidParameterValue, match="Exactly one"):
        w.secrets.put_secret("limits", "both", string_value="a", bytes_value="YQ==")
    with pytest.raises(InvalidParameterValue, match="Scope name"):
        w.secrets.create_scope("no spaces")
    with pytest.raises(ResourceDoesNotExist, match="Scope nope does not exist"):
        w.secrets.put_secret("nope", "k", string_value="v")
    with pytest.raises(NotFound):
        w.secrets.get_secret("limits", "absent")
    with pytest.raises(NotFound, match="Principal"):
        w.secrets.put_acl("limits", "nobody@example.com", AclPermission.READ)
    for i in range(999):
        w.secrets.put_secret("limits", f"k{i}", string_value=str(i))
    w.secrets.put_secret("limits", "k5", string_value="rewritten")
    with pytest.raises(BadRequest, match="1000 secrets"):
        w.secrets.put_secret("limits", "one-too-many", string_value="x")
    assert len(list(w.secrets.list_secrets("limits"))) == 1000
    assert base64.b64decode(w.secrets.get_secret("limits", "k5").value) == b"rewritten"
    w.secrets.delete_scope("limits")
    with pytest.raises(ResourceDoesNotExist):
        list(w.secrets.list_secrets("limits"))


def test_dbutils_reads_secrets_and_results_redact_them(server):
    w = server.client()
    w.secrets.create_scope("ctx")
    w.secrets.put_secret("ctx", "password", string_value=VALUE)
    context = w.command_execution.create_and_wait(language=Language.PYTHON, timeout=WAIT)

    def run(code):
        return w.command_execution.execute_and_wait(context_id=context.id, language=Language.PYTHON, command=code,
                                                    timeout=WAIT)

    shown = run("pw = dbutils.secrets.get('ctx', 'password')\nprint('the password is', pw)\npw")
    assert shown.status == CommandStatus.FINISHED, shown
    assert VALUE not in str(shown.results.data) and shown.results.data.count("[REDACTED]") == 2
    listed = run("[m.key for m in dbutils.secrets.list('ctx')], [s.name for s in dbutils.secrets.listScopes()]")
    assert "'password'" in listed.results.data and "'ctx'" in listed.results.data
    failed = run("raise ValueError('bad credentials: ' + pw)")
    assert failed.results.result_type == ResultType.ERROR
    assert VALUE not in (failed.results.cause or "") + (failed.results.summary or "")
    # A transformed value is not the value: as on Databricks, it shows.
    assert run("pw[::-1]").results.data.strip("'") == VALUE[::-1]
    missing = run("dbutils.secrets.get('ctx', 'nope')")
    assert missing.results.result_type == ResultType.ERROR and "does not exist" in missing.results.summary
    w.command_execution.destroy(cluster_id=None, context_id=context.id)


def test_values_are_sealed_at_rest(server):
    w = server.client()
    w.secrets.create_scope("rest")
    w.secrets.put_secret("rest", "needle", string_value=VALUE)
    key = server.home / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600
    found = []
    for path in server.home.rglob("*"):
        if path.is_file() and path != key:
            try:
                if VALUE.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                pass
    assert found == []


def test_cluster_env_vars_and_conf_take_secret_references(server):
    w = server.client()
    w.secrets.create_scope("cluster")
    w.secrets.put_secret("cluster", "password", string_value=VALUE)
    cluster = w.clusters.create_and_wait(
        cluster_name="with-secrets", spark_version="16.4.x-scala2.13", num_workers=0, timeout=WAIT,
        spark_env_vars={"DB_PASSWORD": "{{secrets/cluster/password}}", "MODE": "dev"},
        spark_conf={"spark.tarn.password": "{{secrets/cluster/password}}"})
    try:
        # The cluster's spec keeps the references.
        assert w.clusters.get(cluster.cluster_id).spark_env_vars["DB_PASSWORD"] == "{{secrets/cluster/password}}"
        context = w.command_execution.create_and_wait(cluster_id=cluster.cluster_id, language=Language.PYTHON,
                                                      timeout=WAIT)

        def run(code):
            return w.command_execution.execute_and_wait(cluster_id=cluster.cluster_id, context_id=context.id,
                                                        language=Language.PYTHON, command=code, timeout=WAIT).results

        got = run("import os\nprint(os.environ['DB_PASSWORD'], spark.conf.get('spark.tarn.password'))\n"
                  "(os.environ['MODE'], len(os.environ['DB_PASSWORD']), spark.conf.get('spark.tarn.password') == "
                  "os.environ['DB_PASSWORD'])")
        assert VALUE not in got.data and got.data.count("[REDACTED]") == 2, got.data
        assert f"('dev', {len(VALUE)}, True)" in got.data
        w.command_execution.destroy(cluster_id=cluster.cluster_id, context_id=context.id)

        # The creator's permissions resolve the references: a user without
        # READ on the scope gets no context on a cluster naming it.
        erin = user_client(server, "erin@example.com")
        w.users.patch(erin.current_user.me().id, schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
                      operations=[iam.Patch(op=iam.PatchOp.ADD, path="entitlements",
                                            value=[{"value": "allow-cluster-create"}])])
        theirs = erin.clusters.create_and_wait(
            cluster_name="erin", spark_version="16.4.x-scala2.13", num_workers=0, timeout=WAIT,
            spark_env_vars={"DB_PASSWORD": "{{secrets/cluster/password}}"})
        with pytest.raises(InvalidParameterValue, match=r"\{\{secrets/cluster/password\}\}.*READ"):
            erin.command_execution.create(cluster_id=theirs.cluster_id, language=Language.PYTHON).result()
        erin.clusters.permanent_delete(theirs.cluster_id)
    finally:
        w.clusters.permanent_delete(cluster.cluster_id)


def test_job_parameters_take_secret_references_and_outputs_redact_them(server):
    import textwrap

    from databricks.sdk.service import jobs, workspace

    w = server.client()
    w.secrets.create_scope("jobs")
    w.secrets.put_secret("jobs", "pw", string_value=VALUE)
    w.workspace.mkdirs("/Users/admin/secret-job")
    for name, source, fmt in [
        ("show", "# Databricks notebook source\npw = dbutils.widgets.get('pw')\nprint('got', pw)\n"
                 "dbutils.notebook.exit(f'{len(pw)} {pw}')\n", workspace.ImportFormat.SOURCE),
        ("args.py", "import sys\nprint('argv', sys.argv[1:], len(sys.argv[1]))\n", workspace.ImportFormat.AUTO),
    ]:
        w.workspace.import_(f"/Users/admin/secret-job/{name}", format=fmt, overwrite=True,
                            language=workspace.Language.PYTHON if fmt == workspace.ImportFormat.SOURCE else None,
                            content=base64.b64encode(textwrap.dedent(source).encode()).decode())
    job = w.jobs.create(
        name="secret-params",
        parameters=[jobs.JobParameterDefinition(name="pw", default="{{secrets/jobs/pw}}")],
        tasks=[
            jobs.Task(task_key="show", notebook_task=jobs.NotebookTask(notebook_path="/Users/admin/secret-job/show")),
            jobs.Task(task_key="args", spark_python_task=jobs.SparkPythonTask(
                python_file="/Users/admin/secret-job/args.py", parameters=["{{secrets/jobs/pw}}"])),
        ],
    )
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    outputs = {t.task_key: w.jobs.get_run_output(t.run_id) for t in run.tasks}
    assert outputs["show"].notebook_output.result == f"{len(VALUE)} [REDACTED]"
    assert VALUE not in (outputs["show"].logs or "") and "[REDACTED]" in outputs["show"].logs
    assert f"argv ['[REDACTED]'] {len(VALUE)}" in outputs["args"].logs
    # The run shows the reference, not the value.
    assert VALUE not in str(w.jobs.get_run(run.run_id).as_dict())

    with pytest.raises(InvalidParameterValue, match="secret reference"):
        w.jobs.create(name="bad-ref", tasks=[jobs.Task(
            task_key="t", notebook_task=jobs.NotebookTask(notebook_path="/Users/admin/secret-job/show",
                                                          base_parameters={"pw": "{{secrets/jobs}}"}))])
    missing = w.jobs.run_now_and_wait(job.job_id, job_parameters={"pw": "{{secrets/jobs/absent}}"}, timeout=WAIT)
    assert missing.state.result_state == jobs.RunResultState.FAILED
    show = next(t for t in missing.tasks if t.task_key == "show")
    assert "{{secrets/jobs/absent}}" in show.state.state_message


class FakeVault(BaseHTTPRequestHandler):
    """A Vault server's KV v2 read (`GET /v1/<mount>/data/<path>`), as
    Vault's HTTP API documents it, with its token check."""

    secrets = {"secret/data/app/db": {"username": "svc", "password": "v4ult-pw-99"}}

    def do_GET(self):
        if self.headers.get("X-Vault-Token") != VAULT_TOKEN:
            return self.answer(403, {"errors": ["permission denied"]})
        data = self.secrets.get(self.path.removeprefix("/v1/"))
        if data is None:
            return self.answer(404, {"errors": []})
        self.answer(200, {"data": {"data": data, "metadata": {"version": 3, "destroyed": False}}})

    def answer(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def vault():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeVault)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_scopes_read_from_vault_and_the_environment(server, vault):
    w = server.client()

    def create(body):
        return w.api_client.do("POST", "/api/2.0/secrets/scopes/create", body=body)

    create({"scope": "vault-app", "scope_backend_type": "VAULT",
            "backend_vault": {"address": vault, "mount": "secret", "path": "app/db"}})
    create({"scope": "env-app", "scope_backend_type": "ENV", "backend_env": {"prefix": "TARN_TEST_APP_"}})
    scopes = {s["name"]: s["backend_type"] for s in w.api_client.do("GET", "/api/2.0/secrets/scopes/list")["scopes"]}
    assert scopes["vault-app"] == "VAULT" and scopes["env-app"] == "ENV"
    assert base64.b64decode(w.secrets.get_secret("vault-app", "password").value) == b"v4ult-pw-99"
    assert [s.key for s in w.secrets.list_secrets("vault-app")] == ["password", "username"]
    assert base64.b64decode(w.secrets.get_secret("env-app", "DB_URL").value) == b"postgres://svc@db/app"
    with pytest.raises(NotFound):
        w.secrets.get_secret("vault-app", "absent")
    with pytest.raises(InvalidParameterValue, match="read-only"):
        w.secrets.put_secret("vault-app", "password", string_value="x")

    # Values from Vault redact like any other.
    context = w.command_execution.create_and_wait(language=Language.PYTHON, timeout=WAIT)
    shown = w.command_execution.execute_and_wait(context_id=context.id, language=Language.PYTHON, timeout=WAIT,
                                                 command="print(dbutils.secrets.get('vault-app', 'password'))")
    assert shown.results.data.strip() == "[REDACTED]"
    w.command_execution.destroy(cluster_id=None, context_id=context.id)

    # Only admins point scopes at Vault or tarn's environment.
    frank = user_client(server, "frank@example.com")
    with pytest.raises(PermissionDenied):
        frank.api_client.do("POST", "/api/2.0/secrets/scopes/create",
                            body={"scope": "mine", "scope_backend_type": "ENV", "backend_env": {"prefix": "TARN_"}})
    with pytest.raises(PermissionDenied):
        frank.secrets.get_secret("env-app", "DB_URL")
    # A Vault that does not answer is the scope's state, and the token stays out of the message.
    create({"scope": "vault-down", "scope_backend_type": "VAULT",
            "backend_vault": {"address": "http://127.0.0.1:9", "path": "app/db"}})
    with pytest.raises(BadRequest, match="did not answer") as refused:
        w.secrets.get_secret("vault-down", "password")
    assert VAULT_TOKEN not in str(refused.value)
    with pytest.raises(SdkNotImplemented, match="not supported"):
        create({"scope": "kv", "scope_backend_type": "AZURE_KEYVAULT"})


def test_a_pipelines_python_reads_secrets_with_dbutils(server):
    import io

    from databricks.sdk.service.pipelines import FileLibrary, PipelineLibrary
    from databricks.sdk.service.workspace import ImportFormat
    from test_pipelines import finish

    w = server.client()
    w.secrets.create_scope("pipe")
    w.secrets.put_secret("pipe", "token", string_value=VALUE)
    source = (b"import dlt\n\n@dlt.table\ndef token_length():\n"
              b"    token = dbutils.secrets.get('pipe', 'token')\n"
              b"    return spark.createDataFrame([(len(token), token.startswith('s3cr3t'))], 'n INT, ok BOOLEAN')\n")
    w.workspace.mkdirs("/Shared/secret-pipe")
    w.workspace.upload("/Shared/secret-pipe/p.py", io.BytesIO(source), format=ImportFormat.RAW, overwrite=True)
    pipeline_id = w.pipelines.create(name="secret-pipe", catalog="main", schema="default", libraries=[
        PipelineLibrary(file=FileLibrary(path="/Shared/secret-pipe/p.py"))]).pipeline_id
    update_id = w.pipelines.start_update(pipeline_id).update_id
    assert finish(w, pipeline_id, update_id) == "COMPLETED", [
        e.message for e in w.pipelines.list_pipeline_events(pipeline_id)]
    (warehouse,) = list(w.warehouses.list())
    r = w.statement_execution.execute_statement(statement="SELECT n, ok FROM main.default.token_length",
                                                warehouse_id=warehouse.id, wait_timeout="50s")
    assert r.result.data_array == [[str(len(VALUE)), "true"]]
