"""The legacy `databricks` CLI (databricks-cli 0.18, the one pip installs)
against tarn: every command group the issue names, run for real as a user
would (a `~/.databrickscfg` in its own HOME, `jobs-api-version = 2.1`), with
results checked through databricks-sdk or the CLI's own output.

That CLI drops the port from its host (it calls `scheme://hostname/api/`),
so tarn serves it on port 80 here; where this process cannot bind port 80
the module is skipped with that reason."""

import base64
import errno
import json
import random
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from conftest import Tarn, wait_for
from databricks.sdk import errors

SPARK_VERSION = "16.4.x-scala2.13"


def port_80_refusal() -> str | None:
    """Why this process cannot serve on 127.0.0.1:80, or None if it can."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 80))
        except PermissionError:
            return "binding port 80 needs root or CAP_NET_BIND_SERVICE, and the legacy CLI cannot reach another port"
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return "127.0.0.1:80 is taken by another process, and the legacy CLI cannot reach another port"
            raise
    return None


@pytest.fixture(scope="module")
def server():
    refusal = port_80_refusal()
    if refusal:
        pytest.skip(refusal)
    home = Path(tempfile.mkdtemp(prefix="tarn-legacy-"))
    tarn = Tarn(home, port=80).start()
    try:
        yield tarn
    finally:
        tarn.stop()
        shutil.rmtree(home, ignore_errors=True)


class Cli:
    """Runs the legacy CLI with a HOME of its own whose `.databrickscfg`
    points at `server`: DEFAULT (the admin, jobs on 2.1 by configuration),
    `flag` (the admin, jobs on 2.0 unless `--version=2.1`) and `bob` (a
    user who is no admin)."""

    def __init__(self, executable: Path, server: Tarn, home: Path):
        self.executable = executable
        self.home = home
        bob = server.cli_token("legacy-bob@example.com")
        (home / ".databrickscfg").write_text(
            f"[DEFAULT]\nhost = http://127.0.0.1\ntoken = {server.token}\njobs-api-version = 2.1\n\n"
            f"[flag]\nhost = http://127.0.0.1\ntoken = {server.token}\n\n"
            f"[bob]\nhost = http://127.0.0.1\ntoken = {bob}\n"
        )
        self.env = {
            "HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "DATABRICKS_CONFIG_FILE": str(home / ".databrickscfg"),
            # A newer `databricks` on PATH would otherwise run instead.
            "DATABRICKS_CLI_DO_NOT_EXECUTE_NEWER_VERSION": "1",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.executable), *args], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=180)

    def __call__(self, *args: str) -> str:
        """The command's stdout; a failure shows what the CLI printed."""
        done = self.run(*args)
        assert done.returncode == 0, f"databricks {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def json(self, *args: str):
        return json.loads(self(*args))

    def fails(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode != 0, f"databricks {' '.join(args)} succeeded: {done.stdout}"
        return done.stdout + done.stderr

    def write(self, name: str, text: str) -> Path:
        path = self.home / name
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def cli(server, legacy_cli):
    home = Path(tempfile.mkdtemp(prefix="legacy-cli-home-"))
    yield Cli(legacy_cli, server, home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def w(server):
    return server.client()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_the_cli_drops_the_port_from_its_host(legacy_cli):
    probe = "from databricks_cli.sdk.api_client import ApiClient; print(ApiClient(host='http://127.0.0.1:8080', token='t').url)"
    python = legacy_cli.parent / "python"
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "http://127.0.0.1/api/"


def test_workspace_import_export_ls_mkdirs_rm(cli, w):
    source = cli.write("hello.py", "# Databricks notebook source\nprint('hello from the legacy cli')\n")
    cli("workspace", "mkdirs", "/Shared/legacy/nested")
    cli("workspace", "import", "-l", "PYTHON", "-f", "SOURCE", str(source), "/Shared/legacy/hello")
    assert w.workspace.get_status("/Shared/legacy/hello").object_type.value == "NOTEBOOK"
    listing = cli("workspace", "ls", "-l", "/Shared/legacy")
    assert re.search(r"NOTEBOOK\s+hello\s+PYTHON", listing) and re.search(r"DIRECTORY\s+nested", listing)
    cli("workspace", "export", "-f", "SOURCE", "/Shared/legacy/hello", str(cli.home / "back.py"))
    assert "print('hello from the legacy cli')" in (cli.home / "back.py").read_text()
    tree = cli.home / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.py").write_text("# Databricks notebook source\nx = 1\n")
    (tree / "sub" / "b.sql").write_text("-- Databricks notebook source\nSELECT 1\n")
    cli("workspace", "import_dir", str(tree), "/Shared/legacy/tree")
    assert w.workspace.get_status("/Shared/legacy/tree/sub/b").language.value == "SQL"
    cli("workspace", "export_dir", "/Shared/legacy/tree", str(cli.home / "tree-back"))
    assert "x = 1" in (cli.home / "tree-back" / "a.py").read_text()
    assert "SELECT 1" in (cli.home / "tree-back" / "sub" / "b.sql").read_text()
    cli("workspace", "rm", "/Shared/legacy/hello")
    with pytest.raises(errors.NotFound):
        w.workspace.get_status("/Shared/legacy/hello")
    cli("workspace", "rm", "-r", "/Shared/legacy")
    assert "legacy" not in cli("workspace", "ls", "/Shared").split()


def test_fs_cp_ls_cat_mv_rm_on_dbfs(cli, w):
    local = cli.write("data.csv", "id,name\n1,ada\n2,grace\n")
    cli("fs", "mkdirs", "dbfs:/legacy")
    cli("fs", "cp", str(local), "dbfs:/legacy/data.csv")
    assert base64.b64decode(w.dbfs.read("/legacy/data.csv").data) == local.read_bytes()
    assert re.search(rf"file\s+{local.stat().st_size}\s+data.csv", cli("fs", "ls", "-l", "dbfs:/legacy"))
    assert cli("fs", "cat", "dbfs:/legacy/data.csv") == local.read_text()
    cli("fs", "mv", "dbfs:/legacy/data.csv", "dbfs:/legacy/moved.csv")
    cli("fs", "cp", "dbfs:/legacy/moved.csv", str(cli.home / "back.csv"))
    assert (cli.home / "back.csv").read_text() == local.read_text()
    cli("fs", "rm", "dbfs:/legacy/moved.csv")
    # The CLI posts any file under 2 GB as one `put` form.
    big = cli.home / "big.bin"
    big.write_bytes(random.randbytes(24 << 20))
    cli("fs", "cp", str(big), "dbfs:/legacy/big.bin")
    assert w.dbfs.get_status("/legacy/big.bin").file_size == 24 << 20
    cli("fs", "cp", "dbfs:/legacy/big.bin", str(cli.home / "big-back.bin"))
    assert (cli.home / "big-back.bin").read_bytes() == big.read_bytes()
    cli("fs", "rm", "dbfs:/legacy/big.bin")
    tree = cli.home / "fs-tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    cli("fs", "cp", "-r", str(tree), "dbfs:/legacy/tree")
    assert base64.b64decode(w.dbfs.read("/legacy/tree/sub/b.txt").data) == b"b"
    (tree / "a.txt").write_text("a, again")
    assert "exists" in cli.fails("fs", "cp", str(tree / "a.txt"), "dbfs:/legacy/tree/a.txt")
    cli("fs", "cp", "--overwrite", str(tree / "a.txt"), "dbfs:/legacy/tree/a.txt")
    assert base64.b64decode(w.dbfs.read("/legacy/tree/a.txt").data) == b"a, again"
    assert cli("fs", "ls", "dbfs:/legacy").split() == ["tree"]
    cli("fs", "rm", "-r", "dbfs:/legacy")
    with pytest.raises(errors.NotFound):
        w.dbfs.get_status("/legacy")


def test_dbfs_put_forms_in_any_field_order(server, w):
    """`contents` (the SDK's name) or `file` (the legacy CLI's), before or after `path`."""
    first = [("path", (None, "/forms/a.txt")), ("overwrite", (None, "true")), ("contents", ("a.txt", b"path first"))]
    late = [("file", ("b.txt", b"file first")), ("path", (None, "/forms/b.txt"))]
    for form in (first, late):
        assert server.raw("POST", "/api/2.0/dbfs/put", files=form).json() == {}
    assert base64.b64decode(w.dbfs.read("/forms/a.txt").data) == b"path first"
    assert base64.b64decode(w.dbfs.read("/forms/b.txt").data) == b"file first"
    again = server.raw("POST", "/api/2.0/dbfs/put", files=late)
    assert again.status_code == 409 and again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    no_path = server.raw("POST", "/api/2.0/dbfs/put", files=[("file", ("c.txt", b"x"))])
    assert no_path.status_code == 400 and no_path.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def create_cluster(cli, name: str) -> str:
    spec = {"cluster_name": name, "spark_version": SPARK_VERSION, "num_workers": 0, "autotermination_minutes": 10}
    return cli.json("clusters", "create", "--json", json.dumps(spec))["cluster_id"]


def test_clusters_create_get_list_delete(cli, w):
    name = unique("legacy-cluster")
    cluster_id = create_cluster(cli, name)
    assert cli.json("clusters", "get", "--cluster-id", cluster_id)["cluster_name"] == name
    assert cli.json("clusters", "get", "--cluster-name", name)["cluster_id"] == cluster_id
    assert re.search(rf"{cluster_id}\s+{name}\s+", cli("clusters", "list"))
    assert any(e["type"] == "CREATING" for e in cli.json("clusters", "events", "--cluster-id", cluster_id, "--output", "JSON")["events"])
    assert SPARK_VERSION in [v["key"] for v in cli.json("clusters", "spark-versions")["versions"]]
    assert cli.json("clusters", "list-node-types")["node_types"] and cli.json("clusters", "list-zones")["zones"]
    cli("clusters", "delete", "--cluster-id", cluster_id)
    assert w.clusters.get(cluster_id).state.value in ("TERMINATING", "TERMINATED")
    cli("clusters", "permanent-delete", "--cluster-id", cluster_id)
    assert cluster_id not in cli("clusters", "list")


def test_libraries_install_status_uninstall(cli, w):
    cluster_id = create_cluster(cli, unique("legacy-libraries"))
    try:
        cli("libraries", "install", "--cluster-id", cluster_id, "--pypi-package", "six==1.17.0")
        (status,) = cli.json("libraries", "cluster-status", "--cluster-id", cluster_id)["library_statuses"]
        assert status["library"] == {"pypi": {"package": "six==1.17.0"}}
        assert cli.json("libraries", "list", "--cluster-id", cluster_id)["library_statuses"][0]["library"] == status["library"]
        everywhere = cli.json("libraries", "all-cluster-statuses")["statuses"]
        assert cluster_id in [s["cluster_id"] for s in everywhere]
        sdk_view = w.libraries.cluster_status(cluster_id)
        assert [s.library.pypi.package for s in sdk_view] == ["six==1.17.0"]
        cli("libraries", "uninstall", "--cluster-id", cluster_id, "--pypi-package", "six==1.17.0")
        statuses = cli.json("libraries", "list", "--cluster-id", cluster_id).get("library_statuses", [])
        assert [s["status"] for s in statuses] in ([], ["UNINSTALL_ON_RESTART"])
    finally:
        cli("clusters", "permanent-delete", "--cluster-id", cluster_id)


def wait_for_run(cli, run_id: int) -> dict:
    def ended():
        run = cli.json("runs", "get", "--run-id", str(run_id))
        return run if run["state"]["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED") else None

    return wait_for(ended, timeout=300, interval=1)


def test_jobs_on_2_1_and_their_runs(cli, w):
    notebook = cli.write("answer.py", "# Databricks notebook source\ndbutils.notebook.exit('legacy ' + str(6 * 7))\n")
    cli("workspace", "mkdirs", "/Shared/legacy-jobs")
    cli("workspace", "import", "-l", "PYTHON", "-f", "SOURCE", "-o", str(notebook), "/Shared/legacy-jobs/answer")
    name = unique("legacy-job")
    settings = {"name": name, "tasks": [{"task_key": "answer", "notebook_task": {"notebook_path": "/Shared/legacy-jobs/answer"}}]}
    job_id = cli.json("jobs", "create", "--json-file", str(cli.write("job.json", json.dumps(settings))))["job_id"]
    assert w.jobs.get(job_id).settings.tasks[0].task_key == "answer"
    assert re.search(rf"^{job_id}\s+{name}$", cli("jobs", "list"), re.M)
    assert re.search(rf"^{job_id}\s+{name}$", cli("jobs", "list", "--profile", "flag", "--version=2.1"), re.M)
    # Jobs 2.0, the CLI's default, is not served; the error says what to set.
    assert "jobs-api-version = 2.1" in cli.fails("jobs", "list", "--profile", "flag")
    got = cli.json("jobs", "get", "--job-id", str(job_id), "--version=2.1")
    assert got["settings"]["tasks"][0]["notebook_task"]["notebook_path"] == "/Shared/legacy-jobs/answer"

    run_id = cli.json("jobs", "run-now", "--job-id", str(job_id))["run_id"]
    run = wait_for_run(cli, run_id)
    assert run["state"]["result_state"] == "SUCCESS", run["state"]
    listed = cli.json("runs", "list", "--job-id", str(job_id), "--output", "JSON")["runs"]
    assert [r["run_id"] for r in listed] == [run_id]
    (task,) = run["tasks"]
    output = cli.json("runs", "get-output", "--run-id", str(task["run_id"]))
    assert output["notebook_output"]["result"] == "legacy 42"
    renamed = dict(settings, name=name + "-reset")
    cli("jobs", "reset", "--job-id", str(job_id), "--json", json.dumps({"job_id": job_id, "new_settings": renamed}))
    assert w.jobs.get(job_id).settings.name == name + "-reset"
    cli("jobs", "delete", "--job-id", str(job_id))
    with pytest.raises(errors.NotFound):
        w.jobs.get(job_id)


def test_runs_submit_wait_and_cancel(cli, w):
    notebook = cli.write("once.py", "# Databricks notebook source\ndbutils.notebook.exit('once')\n")
    cli("workspace", "mkdirs", "/Shared/legacy-runs")
    cli("workspace", "import", "-l", "PYTHON", "-f", "SOURCE", "-o", str(notebook), "/Shared/legacy-runs/once")
    spec = {"run_name": unique("legacy-once"),
            "tasks": [{"task_key": "once", "notebook_task": {"notebook_path": "/Shared/legacy-runs/once"}}]}
    run_id = json.loads(cli("runs", "submit", "--wait", "--json", json.dumps(spec)))["run_id"]
    run = w.jobs.get_run(run_id)
    assert run.state.result_state.value == "SUCCESS"
    assert w.jobs.get_run_output(run.tasks[0].run_id).notebook_output.result == "once"
    cli("runs", "cancel", "--run-id", str(run_id))
    assert w.jobs.get_run(run_id).state.result_state.value == "SUCCESS"


def test_tokens_and_unity_catalog_reads(cli, w):
    token_id = cli.json("tokens", "create", "--comment", "legacy", "--lifetime-seconds", "3600")["token_info"]["token_id"]
    assert token_id in [t["token_id"] for t in cli.json("tokens", "list")["token_infos"]]
    cli("tokens", "revoke", "--token-id", token_id)
    assert token_id not in [t.token_id for t in w.tokens.list()]
    assert "main" in [c["name"] for c in cli.json("unity-catalog", "catalogs", "list")["catalogs"]]
    assert "default" in [s["name"] for s in cli.json("unity-catalog", "schemas", "list", "--catalog-name", "main")["schemas"]]


def test_secrets_scopes_values_and_acls(cli, w):
    scope = unique("legacy-scope")
    cli("secrets", "create-scope", "--scope", scope)
    assert scope in [s["name"] for s in cli.json("secrets", "list-scopes", "--output", "JSON")["scopes"]]
    cli("secrets", "put", "--scope", scope, "--key", "db-password", "--string-value", "s3cr3t")
    assert base64.b64decode(w.secrets.get_secret(scope, "db-password").value) == b"s3cr3t"
    (cli.home / "cert.der").write_bytes(b"\x00\xffder")
    cli("secrets", "put", "--scope", scope, "--key", "cert", "--binary-file", str(cli.home / "cert.der"))
    assert base64.b64decode(w.secrets.get_secret(scope, "cert").value) == b"\x00\xffder"
    cli("secrets", "delete", "--scope", scope, "--key", "cert")
    assert [s["key"] for s in cli.json("secrets", "list", "--scope", scope, "--output", "JSON")["secrets"]] == ["db-password"]
    cli("secrets", "put-acl", "--scope", scope, "--principal", "legacy-bob@example.com", "--permission", "READ")
    acls = cli.json("secrets", "list-acls", "--scope", scope, "--output", "JSON")["items"]
    assert {"principal": "legacy-bob@example.com", "permission": "READ"} in acls
    assert cli.json("secrets", "get-acl", "--scope", scope, "--principal", "legacy-bob@example.com",
                    "--output", "JSON")["permission"] == "READ"
    # bob may read but not write (the CLI words any 403 this way).
    assert "Authorization failed" in cli.fails("secrets", "put", "--profile", "bob", "--scope", scope,
                                            "--key", "k", "--string-value", "v")
    cli("secrets", "delete-acl", "--scope", scope, "--principal", "legacy-bob@example.com")
    cli("secrets", "delete", "--scope", scope, "--key", "db-password")
    assert cli.json("secrets", "list", "--scope", scope, "--output", "JSON").get("secrets", []) == []
    cli("secrets", "delete-scope", "--scope", scope)
    assert "RESOURCE_DOES_NOT_EXIST" in cli.fails("secrets", "list", "--scope", scope)


def test_legacy_groups_errors_are_in_the_databricks_shape(server):
    def error(method, path, token=None, **kw):
        r = server.raw(method, f"/api/2.0/groups/{path}", token=token, **kw)
        return r.status_code, r.json()["error_code"], r.json()["message"]

    bob = server.cli_token("legacy-bob@example.com")
    assert error("GET", "list-parents")[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert error("GET", "list-parents", params={"user_name": "a", "group_name": "b"})[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert error("GET", "list-members")[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert error("GET", "list-members", params={"group_name": "nope"}) == (404, "RESOURCE_DOES_NOT_EXIST", "Group nope does not exist")
    assert error("POST", "add-member", json={"parent_name": "admins", "user_name": "ghost@example.com"})[:2] == (404, "RESOURCE_DOES_NOT_EXIST")
    assert error("POST", "add-member", json={"parent_name": "users", "user_name": "legacy-bob@example.com"})[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert error("POST", "delete", json={"group_name": "admins"})[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert error("POST", "create", token=bob, json={"group_name": "bobs"})[:2] == (403, "PERMISSION_DENIED")
    assert error("POST", "create", json={})[:2] == (400, "INVALID_PARAMETER_VALUE")


def test_groups_through_the_legacy_groups_api(cli, w):
    team, outer = unique("legacy-team"), unique("legacy-outer")
    assert cli.json("groups", "create", "--group-name", team) == {"group_name": team}
    cli("groups", "create", "--group-name", outer)
    assert {team, outer, "admins", "users"} <= set(cli.json("groups", "list")["group_names"])
    cli("groups", "add-member", "--parent-name", team, "--user-name", "legacy-bob@example.com")
    cli("groups", "add-member", "--parent-name", outer, "--group-name", team)
    assert cli.json("groups", "list-members", "--group-name", team) == {"members": [{"user_name": "legacy-bob@example.com"}]}
    assert cli.json("groups", "list-members", "--group-name", outer) == {"members": [{"group_name": team}]}
    assert cli.json("groups", "list-parents", "--user-name", "legacy-bob@example.com") == {"group_names": [team]}
    assert cli.json("groups", "list-parents", "--group-name", team) == {"group_names": [outer]}
    # The same groups through SCIM.
    (scim,) = w.groups.list(filter=f'displayName eq "{team}"')
    assert [m.display for m in scim.members] == ["legacy-bob@example.com"]
    assert "INVALID_PARAMETER_VALUE" in cli.fails("groups", "add-member", "--parent-name", team, "--group-name", outer)
    assert "Authorization failed" in cli.fails("groups", "create", "--profile", "bob", "--group-name", unique("nope"))
    assert "RESOURCE_ALREADY_EXISTS" in cli.fails("groups", "create", "--group-name", team)

    cli("groups", "remove-member", "--parent-name", team, "--user-name", "legacy-bob@example.com")
    assert cli.json("groups", "list-members", "--group-name", team) == {"members": []}
    cli("groups", "delete", "--group-name", outer)
    cli("groups", "delete", "--group-name", team)
    assert not list(w.groups.list(filter=f'displayName eq "{team}"'))
    assert "RESOURCE_DOES_NOT_EXIST" in cli.fails("groups", "list-members", "--group-name", team)


def pipeline_id_from(output: str) -> str:
    match = re.search(r"with ID: ([0-9a-f-]{36})", output)
    assert match, output
    return match.group(1)


def wait_idle(w, pipeline_id: str) -> None:
    wait_for(lambda: w.pipelines.get(pipeline_id).state.value == "IDLE", timeout=120, interval=0.5)


def test_pipelines_create_get_list_start_stop_delete(cli, w):
    notebook = cli.write("numbers.sql", "-- Databricks notebook source\nCREATE MATERIALIZED VIEW numbers AS SELECT id FROM range(5)\n")
    cli("workspace", "mkdirs", "/Shared/legacy-pipelines")
    cli("workspace", "import", "-l", "SQL", "-f", "SOURCE", "-o", str(notebook), "/Shared/legacy-pipelines/numbers")
    schema = unique("legacy").replace("-", "_")
    w.schemas.create(name=schema, catalog_name="main")
    name = unique("legacy-pipeline")
    settings = {"name": name, "catalog": "main", "target": schema, "development": True,
                "libraries": [{"notebook": {"path": "/Shared/legacy-pipelines/numbers"}}]}
    pipeline_id = pipeline_id_from(cli("pipelines", "create", str(cli.write("pipeline.json", json.dumps(settings)))))
    assert cli.json("pipelines", "get", "--pipeline-id", pipeline_id)["spec"]["target"] == schema
    assert pipeline_id in [p["pipeline_id"] for p in cli.json("pipelines", "list")]

    started = cli("pipelines", "start", "--pipeline-id", pipeline_id)
    update_id = re.search(r"Started an update (\S+) for pipeline", started).group(1)
    def ended():
        state = w.pipelines.get_update(pipeline_id, update_id).update.state.value
        return state if state in ("COMPLETED", "FAILED", "CANCELED") else None

    state = wait_for(ended, timeout=300, interval=0.5)
    assert state == "COMPLETED", [e.message for e in w.pipelines.list_pipeline_events(pipeline_id)]
    assert w.tables.get(f"main.{schema}.numbers").table_type.value == "MATERIALIZED_VIEW"

    # `reset` is a full-refresh update; `stop` cancels it.
    assert "with full refresh" in cli("pipelines", "reset", "--pipeline-id", pipeline_id)
    cli("pipelines", "stop", "--pipeline-id", pipeline_id)
    wait_idle(w, pipeline_id)

    # `deploy` with an id in the settings edits that pipeline (PUT).
    renamed = dict(settings, id=pipeline_id, name=name + "-renamed")
    assert "Successfully deployed pipeline" in cli("pipelines", "deploy", str(cli.write("renamed.json", json.dumps(renamed))))
    assert w.pipelines.get(pipeline_id).name == name + "-renamed"
    edited = dict(settings, name=name + "-edited")
    assert "Successfully edited" in cli("pipelines", "edit", "--pipeline-id", pipeline_id,
                                        "--settings", str(cli.write("edited.json", json.dumps(edited))))
    assert w.pipelines.get(pipeline_id).name == name + "-edited"
    assert "already exists" in cli.fails("pipelines", "create", str(cli.write("again.json", json.dumps(dict(settings, name=name + "-edited")))))

    cli("pipelines", "delete", "--pipeline-id", pipeline_id)
    with pytest.raises(errors.NotFound):
        w.pipelines.get(pipeline_id)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def origin():
    """A local git repository with `main` and a `feature` branch."""
    root = Path(tempfile.mkdtemp(prefix="legacy-origin-"))
    git("init", "-q", "-b", "main", cwd=root)
    git("config", "user.email", "legacy@example.com", cwd=root)
    git("config", "user.name", "legacy", cwd=root)
    (root / "README.md").write_text("main\n")
    git("add", ".", cwd=root)
    git("commit", "-q", "-m", "first", cwd=root)
    git("checkout", "-q", "-b", "feature", cwd=root)
    (root / "README.md").write_text("feature\n")
    git("commit", "-q", "-am", "feature", cwd=root)
    git("checkout", "-q", "main", cwd=root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_repos_create_list_update_delete(cli, w, origin):
    path = f"/Repos/admin/{unique('legacy-repo')}"
    repo = cli.json("repos", "create", "--url", str(origin), "--provider", "gitHub", "--path", path)
    assert repo["path"] == path and repo["branch"] == "main"
    assert repo["id"] in [r["id"] for r in cli.json("repos", "list", "--path-prefix", "/Repos/admin")["repos"]]
    assert cli.json("repos", "get", "--path", path)["id"] == repo["id"]
    cli("repos", "update", "--repo-id", str(repo["id"]), "--branch", "feature")
    assert cli.json("repos", "get", "--repo-id", str(repo["id"]))["branch"] == "feature"
    assert w.repos.get(repo["id"]).head_commit_id == git("rev-parse", "feature", cwd=origin).strip()
    cli("repos", "delete", "--path", path)
    with pytest.raises(errors.NotFound):
        w.repos.get(repo["id"])
