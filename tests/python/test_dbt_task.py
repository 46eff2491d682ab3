"""Jobs' `dbt_task` through databricks-sdk: the settings Databricks refuses at
create and submit, the stored settings as `jobs.get` shows them, and real runs
of a small dbt project (`dbt_task_project/`: one seed, one model) from the
workspace or a job's git source, in a task environment with dbt-databricks:
commands that need no warehouse on the session server, `seed` and `run`
against the warehouse's Thrift endpoint on a server of this module's own
that serves TLS (the connector speaks only HTTPS), with the generated profile
and with the project's own."""

import datetime
import io
import json
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import compute, jobs
from databricks.sdk.service.sql import StatementState
from databricks.sdk.service.workspace import ImportFormat

from conftest import own_server

PROJECT = Path(__file__).parent / "dbt_task_project"
# The dbt-core 1.10 line installs from the registry (1.11+ fetches a parser
# from outside it at install time).
DBT_DEPENDENCIES = ["dbt-core==1.10.19", "dbt-databricks==1.10.19"]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def warehouse_id(w) -> str:
    (warehouse,) = list(w.warehouses.list())
    return warehouse.id


def dbt_environment() -> jobs.JobEnvironment:
    return jobs.JobEnvironment(
        environment_key="dbt", spec=compute.Environment(client="1", dependencies=DBT_DEPENDENCIES)
    )


def dbt_job(name: str, task: jobs.DbtTask, **kw) -> dict:
    return dict(
        name=name,
        environments=[dbt_environment()],
        tasks=[jobs.Task(task_key="dbt", environment_key="dbt", dbt_task=task)],
        **kw,
    )


def test_a_dbt_task_round_trips_through_jobs_get(w):
    task = jobs.DbtTask(
        commands=["dbt deps", "dbt seed", "dbt run --select 'dear_fruits'"],
        project_directory="/Workspace/Shared/dbt/shop",
        warehouse_id=warehouse_id(w),
        catalog="main",
        schema="shop",
        source=jobs.Source.WORKSPACE,
    )
    job = w.jobs.create(**dbt_job(unique("dbt"), task))
    try:
        got = w.jobs.get(job.job_id).settings
        assert got.tasks[0].dbt_task == task
        assert got.tasks[0].environment_key == "dbt"
        assert got.environments[0].spec.dependencies == DBT_DEPENDENCIES
    finally:
        w.jobs.delete(job.job_id)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(commands=[]), "commands must not be empty"),
        (dict(commands=["dbt seed", "ls -la"]), "does not start with 'dbt'"),
        (dict(commands=["dbt run --select 'open"]), "single quote is not closed"),
        (dict(commands=["dbt run"] * 11), "at most 10 commands"),
        (dict(commands=["dbt run"], warehouse_id="nope"), "does not name a SQL warehouse"),
        (dict(commands=["dbt run"], warehouse_id="WAREHOUSE", profiles_directory="profiles"), "profiles_directory"),
        (dict(commands=["dbt run"], catalog="main"), "catalog can only be given with a warehouse_id"),
        (dict(commands=["dbt run"], source=jobs.Source.GIT), "the job has no git_source"),
        (dict(commands=["dbt run"], project_directory=None), "project_directory is needed"),
    ],
)
def test_bad_dbt_tasks_are_refused_at_create(w, fields, message):
    fields = dict(project_directory="/Workspace/Shared/dbt/shop") | fields
    if fields.get("warehouse_id") == "WAREHOUSE":
        fields["warehouse_id"] = warehouse_id(w)
    with pytest.raises(InvalidParameterValue, match=message):
        w.jobs.create(**dbt_job(unique("bad_dbt"), jobs.DbtTask(**fields)))


def test_an_unknown_warehouse_is_refused_at_submit(w):
    task = jobs.SubmitTask(
        task_key="dbt",
        environment_key="dbt",
        dbt_task=jobs.DbtTask(commands=["dbt run"], project_directory="/Shared/p", warehouse_id="0000000000000000"),
    )
    with pytest.raises(InvalidParameterValue, match="does not name a SQL warehouse"):
        w.jobs.submit(run_name=unique("dbt"), tasks=[task], environments=[dbt_environment()])


def upload_project(w, base: str) -> None:
    for path in sorted(p for p in PROJECT.rglob("*") if p.is_file()):
        target = f"{base}/{path.relative_to(PROJECT)}"
        w.workspace.mkdirs(target.rsplit("/", 1)[0])
        w.workspace.upload(target, path.read_bytes(), format=ImportFormat.RAW, overwrite=True)


@pytest.fixture(scope="module")
def project(w):
    base = f"/Workspace/Shared/{unique('dbt_project')}"
    upload_project(w, base)
    return base


def run_job(w, task: jobs.DbtTask, git_source=None, **run_now):
    job = w.jobs.create(**dbt_job(unique("dbt"), task, git_source=git_source))
    # The first run builds the dbt environment (minutes); later ones reuse it.
    run = w.jobs.run_now_and_wait(job.job_id, timeout=datetime.timedelta(minutes=10), **run_now)
    return run, w.jobs.get_run_output(run.tasks[0].run_id)


def artifacts(w, output) -> dict:
    link = output.dbt_output.artifacts_link
    assert link.startswith("dbfs:/")
    data = w.dbfs.download(link).read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_run_now_commands_replace_the_tasks_and_the_first_failing_one_stops_it(w, project):
    task = jobs.DbtTask(commands=["dbt parse"], project_directory=project, warehouse_id=warehouse_id(w))
    run, output = run_job(w, task, dbt_commands=["dbt run-operation no_such_macro", "dbt ls"])
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert "dbt command failed with exit code" in output.error
    assert "dbt run-operation no_such_macro" in output.error
    assert "$ dbt run-operation no_such_macro" in output.logs and "$ dbt ls" not in output.logs


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_a_project_from_the_jobs_git_source(w, tmp_path):
    origin = tmp_path / "origin"
    shutil.copytree(PROJECT, origin / "analytics")
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", ".")
    git(origin, "commit", "-q", "-m", "dbt project")
    source = jobs.GitSource(git_url=origin.as_uri(), git_provider=jobs.GitProvider.GIT_HUB, git_branch="main")
    task = jobs.DbtTask(commands=["dbt ls --output name"], project_directory="analytics",
                        warehouse_id=warehouse_id(w))
    run, output = run_job(w, task, git_source=source)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, output.error
    assert "dear_fruits" in output.logs and "fruits" in output.logs


@pytest.fixture(scope="module")
def tls_server():
    # dbt's connector speaks only HTTPS: tarn serves it on its port, with a
    # self-signed certificate the generated profile names.
    yield from own_server("tarn-dbt-task-", {"TARN_TLS": "true"})


def rows(w, wid, statement):
    r = w.statement_execution.execute_statement(statement=statement, warehouse_id=wid, wait_timeout="50s")
    assert r.status.state == StatementState.SUCCEEDED, r.status
    return r.result.data_array


@pytest.fixture(scope="module")
def shop(tls_server):
    """The project in the TLS server's workspace, and a schema for it (a
    Thrift session opens on an existing schema only)."""
    w = tls_server.client()
    base = f"/Workspace/Shared/{unique('shop')}"
    upload_project(w, base)
    return w, base


def new_schema(w) -> str:
    schema = unique("fruit_stand")
    w.schemas.create(name=schema, catalog_name="main")
    return schema


def test_seed_and_run_build_the_models_table_with_the_generated_profile(tls_server, shop):
    w, base = shop
    wid, schema = warehouse_id(w), new_schema(w)
    task = jobs.DbtTask(commands=["dbt seed", "dbt run"], project_directory=base, warehouse_id=wid,
                        catalog="main", schema=schema)
    run, output = run_job(w, task)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, (output.error, output.logs)
    assert output.logs.index("$ dbt seed") < output.logs.index("$ dbt run") < output.logs.rindex("Completed successfully")
    assert "target='databricks_cluster'" in output.logs and "\x1b[" not in output.logs
    got = rows(w, wid, f"SELECT id, name, price FROM main.{schema}.dear_fruits ORDER BY id")
    assert [[r[0], r[1], float(r[2])] for r in got] == [["2", "mango", 2.5], ["3", "cherry", 4.0]]
    kept = artifacts(w, output)
    assert "target/manifest.json" in kept and "logs/dbt.log" in kept
    results = json.loads(kept["target/run_results.json"])
    assert [(x["unique_id"], x["status"]) for x in results["results"]] == [("model.tarn_dbt_task.dear_fruits", "success")]
    # The attempt's copy of the project is gone once it ended.
    assert not (tls_server.home / "jobs" / "dbt" / str(run.tasks[0].run_id)).exists()


def test_a_projects_own_profile_reads_host_and_token_from_the_environment(tls_server, shop):
    w, base = shop
    wid, schema = warehouse_id(w), new_schema(w)
    port = tls_server.url.rsplit(":", 1)[1]
    profile = f"""tarn_dbt_task:
  target: mine
  outputs:
    mine:
      type: databricks
      host: "{{{{ env_var('DBT_HOST') }}}}"
      token: "{{{{ env_var('DBT_ACCESS_TOKEN') }}}}"
      http_path: /sql/1.0/warehouses/{wid}
      catalog: main
      schema: {schema}
      connection_parameters:
        _port: {port}
        _tls_trusted_ca_file: "{tls_server.home / 'tls' / 'cert.pem'}"
"""
    w.workspace.mkdirs(f"{base}/conf")
    w.workspace.upload(f"{base}/conf/profiles.yml", profile.encode(), format=ImportFormat.RAW, overwrite=True)
    task = jobs.DbtTask(commands=["dbt seed --select fruits"], project_directory=base, profiles_directory="conf")
    run, output = run_job(w, task)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, (output.error, output.logs)
    assert "target='mine'" in output.logs
    assert rows(w, wid, f"SELECT count(*) FROM main.{schema}.fruits") == [["4"]]
