"""The metadata store on PostgreSQL: a workspace populated through the
official clients on SQLite moves with `tarn migrate --from sqlite --to
postgres`, and serves the same answers from PostgreSQL afterwards.

Runs when TARN_TEST_DATABASE_URL names a PostgreSQL server (`.ci/run`
starts one and runs the whole suite against it too)."""

import base64
import os
import subprocess

import pytest
from databricks.sdk.service import iam, jobs
from mlflow import MlflowClient

from conftest import Tarn, new_database, tarn_binary

ADMIN_URL = os.environ.get("TARN_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not ADMIN_URL, reason="needs a PostgreSQL server (TARN_TEST_DATABASE_URL)")
WAIT = __import__("datetime").timedelta(minutes=2)


def condition_job(w, name):
    return w.jobs.create(
        name=name,
        tasks=[jobs.Task(task_key="check", condition_task=jobs.ConditionTask(
            op=jobs.ConditionTaskOp.EQUAL_TO, left="a", right="a"))],
    )


def populate(server):
    """What a team leaves in a workspace: principals, a job and its run,
    a secret, MLflow runs and a registered model, a schema."""
    w = server.client()
    ann = w.users.create(user_name="ann@example.com", display_name="Ann")
    w.groups.create(display_name="analysts", members=[iam.ComplexValue(value=ann.id)])
    job = condition_job(w, "nightly")
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    w.secrets.create_scope("app")
    w.secrets.put_secret("app", "password", string_value="s3cret")
    w.schemas.create(name="sales", catalog_name="main")
    mlflow = MlflowClient(server.url, registry_uri=server.url)
    experiment = mlflow.create_experiment("/Users/admin/churn")
    mlflow_run = mlflow.create_run(experiment, tags={"team": "ml"})
    for step in range(3):
        mlflow.log_metric(mlflow_run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    mlflow.log_param(mlflow_run.info.run_id, "depth", "4")
    mlflow.set_terminated(mlflow_run.info.run_id)
    mlflow.create_registered_model("churn-model")
    return {"ann": ann.id, "job": job.job_id, "run": run.run_id, "experiment": experiment,
            "mlflow_run": mlflow_run.info.run_id}


def test_a_populated_sqlite_workspace_moves_to_postgres(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # An empty tarn.toml: this home starts on SQLite whatever the suite runs on.
    (home / "tarn.toml").write_text("")
    server = Tarn(home).start()
    try:
        ids = populate(server)
    finally:
        server.stop()

    url = new_database()
    env = dict(os.environ, TARN_HOME=str(home), TARN_DATABASE_URL=url)
    migrate = [tarn_binary(), "migrate", "--from", "sqlite", "--to", "postgres"]
    out = subprocess.run(migrate, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "mlflow_metrics" in out.stdout and "copied" in out.stdout
    # The password in the URL is never printed.
    assert url not in out.stdout + out.stderr
    # A second copy would overwrite a workspace: refused, nothing changed.
    again = subprocess.run(migrate, env=env, capture_output=True, text=True)
    assert again.returncode != 0 and "already holds a workspace" in again.stderr

    # From now on the home reads PostgreSQL; the SQLite file is moved away
    # so that nothing can come from it.
    (home / "tarn.toml").write_text(f'database_url = "{url}"\n')
    (home / "metadata.db").rename(home / "metadata.db.migrated")
    server = Tarn(home).start()
    try:
        w = server.client()  # the same admin token, copied with the rest
        assert w.users.get(ids["ann"]).user_name == "ann@example.com"
        analysts = [g for g in w.groups.list() if g.display_name == "analysts"]
        assert [m.value for m in analysts[0].members] == [ids["ann"]]
        assert w.jobs.get(ids["job"]).settings.name == "nightly"
        run = w.jobs.get_run(ids["run"])
        assert run.state.result_state == jobs.RunResultState.SUCCESS
        assert base64.b64decode(w.secrets.get_secret("app", "password").value).decode() == "s3cret"
        assert "sales" in [s.name for s in w.schemas.list(catalog_name="main")]
        mlflow = MlflowClient(server.url, registry_uri=server.url)
        history = mlflow.get_metric_history(ids["mlflow_run"], "loss")
        assert [(m.step, round(m.value, 3)) for m in history] == [(0, 1.0), (1, 0.5), (2, 0.333)]
        assert mlflow.get_run(ids["mlflow_run"]).data.params == {"depth": "4"}
        assert mlflow.get_registered_model("churn-model").name == "churn-model"
        # New rows are numbered after the copied ones, and run on PostgreSQL.
        job = condition_job(w, "after")
        assert job.job_id > ids["job"]
        after = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
        assert after.state.result_state == jobs.RunResultState.SUCCESS and after.run_id > ids["run"]
    finally:
        server.stop()
