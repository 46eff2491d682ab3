"""`tarn bundle` (init, validate, deploy, run, destroy, summary) run as a
subprocess against a tarn server, the deployment checked through
databricks-sdk: a bundle with a job whose notebook reads a variable, a
pipeline, an experiment and a schema, deployed to a development target and
a production one, changed and redeployed in place, refused when broken
(nothing changed), rolled back when a call fails half-way (files,
resources and the previous notebook as they were), and destroyed."""

import json
import os
import re
import subprocess
import sys

import pytest
from databricks.sdk import errors
from databricks.sdk.service import jobs

from conftest import own_server, tarn_binary

DATABRICKS_YML = """\
bundle:
  name: shop

variables:
  greeting:
    description: What the notebook answers.
    default: hello
  warehouse_id:
    lookup:
      warehouse: WAREHOUSE_NAME

targets:
  dev:
    mode: development
    default: true
  prod:
    mode: production
    workspace:
      root_path: /Workspace/Users/${workspace.current_user.userName}/.bundle/${bundle.name}/${bundle.target}
    permissions:
      - user_name: ${workspace.current_user.userName}
        level: CAN_MANAGE
      - group_name: users
        level: CAN_VIEW
    variables:
      greeting: bonjour

resources:
  jobs:
    etl:
      name: shop_etl
      description: GREETING_DESCRIPTION
      permissions:
        - level: CAN_VIEW
          user_name: bob@example.com
      parameters:
        - name: warehouse
          default: ${var.warehouse_id}
      schedule:
        quartz_cron_expression: "0 0 6 * * ?"
        timezone_id: UTC
      tasks:
        - task_key: greet
          notebook_task:
            notebook_path: ./src/greet.py
            base_parameters:
              greeting: ${var.greeting}
  pipelines:
    orders:
      name: shop_orders
      catalog: main
      schema: ${resources.schemas.shop.name}
      libraries:
        - file:
            path: ./src/orders.py
  experiments:
    runs:
      name: /Users/${workspace.current_user.userName}/shop_runs
  schemas:
    shop:
      catalog_name: main
      name: shop_${bundle.target}
      comment: the shop's tables
      grants:
        - principal: bob@example.com
          privileges: [USE_SCHEMA, CREATE_TABLE]
  volumes:
    landing:
      catalog_name: main
      schema_name: ${resources.schemas.shop.name}
      name: landing
      volume_type: MANAGED
"""

GREET = """\
# Databricks notebook source
greeting = dbutils.widgets.get("greeting")
print("greeting", greeting)
dbutils.notebook.exit(greeting)
"""

ORDERS = """\
from pyspark import pipelines as dp


@dp.materialized_view
def orders():
    return spark.range(3)
"""


@pytest.fixture(scope="module")
def server():
    yield from own_server("tarn-bundle-")


@pytest.fixture(scope="module")
def w(server):
    # Bob is named by the job's permissions and the schema's grants.
    server.cli_token("bob@example.com")
    return server.client()


@pytest.fixture(scope="module")
def warehouse(w):
    (found,) = list(w.warehouses.list())
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory, warehouse):
    root = tmp_path_factory.mktemp("shop")
    text = DATABRICKS_YML.replace("GREETING_DESCRIPTION", "first version").replace("WAREHOUSE_NAME", warehouse.name)
    (root / "databricks.yml").write_text(text)
    (root / "src").mkdir()
    (root / "src" / "greet.py").write_text(GREET)
    (root / "src" / "orders.py").write_text(ORDERS)
    return root


def bundle(server, cwd, *args):
    """Runs `tarn bundle ARGS` in `cwd`: its exit code and all it printed."""
    env = dict(os.environ, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=server.token)
    done = subprocess.run(
        [tarn_binary(), "bundle", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout + done.stderr


def ok(server, cwd, *args):
    code, out = bundle(server, cwd, *args)
    assert code == 0, out
    return out


def ids(server, cwd, *target):
    out = ok(server, cwd, "summary", "-o", "json", *target)
    summary = json.loads(out[out.index("{"):])
    return {f"{kind}.{key}": item["id"] for kind, group in summary["resources"].items() for key, item in group.items()}


def root_path(w, target):
    return f"/Workspace/Users/{w.current_user.me().user_name}/.bundle/shop/{target}"


def test_init_writes_a_bundle_that_validates(server, tmp_path):
    ok(server, tmp_path, "init", "starter")
    starter = tmp_path / "starter"
    assert (starter / "databricks.yml").exists()
    assert (starter / "resources" / "starter.job.yml").exists()
    assert (starter / "src" / "notebook.py").read_text().startswith("# Databricks notebook source")
    out = ok(server, starter, "validate")
    assert "Name: starter" in out and "Target: dev" in out and "Validation OK!" in out, out
    assert "Validation OK!" in ok(server, starter, "validate", "-t", "prod")


def test_validate_prints_where_it_goes(server, w, project, warehouse):
    out = ok(server, project, "validate")
    assert "Name: shop" in out and "Target: dev" in out, out
    assert f"Path: {root_path(w, 'dev')}" in out, out
    assert "Validation OK!" in out
    config = json.loads(ok(server, project, "validate", "--output", "json"))
    assert config["bundle"]["name"] == "shop"
    assert config["variables"]["warehouse_id"]["value"] == warehouse.id, "the lookup asked the workspace"


def test_summary_before_deploy_says_not_deployed(server, project):
    assert "etl: not deployed" in ok(server, project, "summary")
    code, out = bundle(server, project, "run", "etl")
    assert code != 0 and "not deployed" in out, out


def test_deploy_to_the_development_target(server, w, project):
    out = ok(server, project, "deploy")
    for key in ["jobs.etl", "pipelines.orders", "experiments.runs", "schemas.shop", "volumes.landing"]:
        assert re.search(rf"created {re.escape(key)} \(id [^)]+\)", out), out
    assert "Uploaded 3 files" in out, out
    found = ids(server, project)
    short = re.sub(r"[^a-z0-9]", "_", w.current_user.me().user_name.split("@")[0].lower())

    job = w.jobs.get(int(found["jobs.etl"])).settings
    assert job.name == f"[dev {short}] shop_etl"
    assert job.schedule.pause_status == jobs.PauseStatus.PAUSED
    assert job.deployment.kind == jobs.JobDeploymentKind.BUNDLE
    assert job.deployment.metadata_file_path == f"{root_path(w, 'dev')}/state/metadata.json"
    assert job.tasks[0].notebook_task.notebook_path == f"{root_path(w, 'dev')}/files/src/greet"

    schema = w.schemas.get(found["schemas.shop"])
    pipeline = w.pipelines.get(found["pipelines.orders"])
    assert pipeline.spec.development is True
    assert pipeline.spec.schema == schema.name, "the pipeline's schema reference resolved to the deployed schema"
    experiment = w.experiments.get_experiment(found["experiments.runs"]).experiment
    assert experiment.lifecycle_stage == "active"
    assert w.volumes.read(found["volumes.landing"]).schema_name == schema.name
    grants = w.grants.get("schema", found["schemas.shop"]).privilege_assignments
    assert {(g.principal, p.value) for g in grants for p in g.privileges} >= {
        ("bob@example.com", "USE_SCHEMA"), ("bob@example.com", "CREATE_TABLE")}
    acl = w.permissions.get("jobs", found["jobs.etl"]).access_control_list
    assert any(a.user_name == "bob@example.com" and a.all_permissions[0].permission_level.value == "CAN_VIEW"
               for a in acl), acl

    root = root_path(w, "dev")
    assert w.workspace.get_status(f"{root}/files/src/greet").object_type.value == "NOTEBOOK"
    assert w.workspace.get_status(f"{root}/files/src/orders.py").object_type.value == "FILE"
    state = json.loads(w.workspace.download(f"{root}/state/resources.json").read())
    assert state["state"]["resources.jobs.etl"]["__id__"] == found["jobs.etl"]
    deployment = json.loads(w.workspace.download(f"{root}/state/deployment.json").read())
    assert {f["local_path"] for f in deployment["files"]} == {"databricks.yml", "src/greet.py", "src/orders.py"}
    metadata = json.loads(w.workspace.download(f"{root}/state/metadata.json").read())
    assert metadata["config"]["resources"]["jobs"]["etl"]["id"] == found["jobs.etl"]
    with pytest.raises(errors.NotFound):
        w.workspace.get_status(f"{root}/state/deploy.lock")


def test_run_the_job_with_the_variable(server, w, project):
    out = ok(server, project, "run", "etl")
    match = re.search(r"/jobs/(\d+)/runs/(\d+)", out)
    assert match, out
    run = w.jobs.get_run(int(match.group(2)))
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert w.jobs.get_run_output(run.tasks[0].run_id).notebook_output.result == "hello"
    code, out = bundle(server, project, "run", "nope")
    assert code != 0 and "no job or pipeline `nope`" in out, out


def test_run_the_pipeline(server, w, project):
    out = ok(server, project, "run", "pipelines.orders")
    assert "COMPLETED" in out, out
    schema = w.schemas.get(ids(server, project)["schemas.shop"])
    assert w.tables.get(f"main.{schema.name}.orders").name == "orders"


def test_redeploy_updates_in_place(server, w, project):
    before = ids(server, project)
    yml = project / "databricks.yml"
    yml.write_text(yml.read_text().replace("first version", "second version"))
    # Gone behind the bundle's back: the deploy makes it again.
    w.volumes.delete(before["volumes.landing"])
    out = ok(server, project, "deploy")
    assert f"updated jobs.etl (id {before['jobs.etl']})" in out, out
    assert f"unchanged pipelines.orders (id {before['pipelines.orders']})" in out, out
    assert f"created volumes.landing (id {before['volumes.landing']})" in out, out
    assert ids(server, project) == before
    assert w.jobs.get(int(before["jobs.etl"])).settings.description == "second version"

    text = yml.read_text()
    volume = text[text.index("  volumes:\n"):text.index("      volume_type: MANAGED\n") + len("      volume_type: MANAGED\n")]
    yml.write_text(text.replace(volume, ""))
    out = ok(server, project, "deploy")
    assert f"deleted volumes.landing (id {before['volumes.landing']})" in out, out
    with pytest.raises(errors.NotFound):
        w.volumes.read(before["volumes.landing"])
    assert "volumes.landing" not in ids(server, project)


def test_a_broken_bundle_changes_nothing(server, w, project):
    found = ids(server, project)
    job = w.jobs.get(int(found["jobs.etl"])).settings.as_dict()
    text = (project / "databricks.yml").read_text()
    broken = text.replace("greeting: ${var.greeting}", "greeting: ${var.nope}").replace("second version", "third")
    (project / "databricks.yml").write_text(broken)
    try:
        code, out = bundle(server, project, "deploy")
        assert code != 0, out
        assert re.search(r"databricks\.yml:\d+", out), out
        assert "nope" in out
    finally:
        (project / "databricks.yml").write_text(text)
    assert w.jobs.get(int(found["jobs.etl"])).settings.as_dict() == job


VOLUME = """\
  volumes:
    landing:
      catalog_name: main
      schema_name: ${resources.schemas.shop.name}
      name: landing
      volume_type: MANAGED
      comment: where files land
"""


def test_a_failed_deploy_puts_back_what_it_changed(server, w, project):
    yml, greet, extra = project / "databricks.yml", project / "src" / "greet.py", project / "src" / "extra.txt"
    text = yml.read_text() + VOLUME
    yml.write_text(text)
    assert "created volumes.landing" in ok(server, project, "deploy")
    found = ids(server, project)
    pipeline = w.pipelines.get(found["pipelines.orders"]).spec.as_dict()
    changed = text.replace("name: shop_orders", "name: shop_orders\n      configuration:\n        mood: changed")
    changed = changed.replace("comment: the shop's tables", "comment: other tables")
    changed = changed.replace("comment: where files land", "comment: elsewhere")
    changed = changed.replace("privileges: [USE_SCHEMA, CREATE_TABLE]", "privileges: [USE_SCHEMA, CREATE_TABLE, CREATE_VOLUME]")
    changed = changed.replace("        - task_key: greet\n", "        - task_key: greet\n          depends_on:\n            - task_key: ghost\n")
    # The job's task depends on a task the job lacks: the Jobs API refuses it
    # after the files were synced and the schema, volume and pipeline (deployed
    # first) were updated.
    yml.write_text(changed)
    greet.write_text(GREET.replace("exit(greeting)", 'exit("new " + greeting)'))
    extra.write_text("added by the failing deploy")
    try:
        code, out = bundle(server, project, "deploy")
        assert code != 0, out
        assert "ghost" in out and "rolled back" in out, out
        assert "put back the previous content of 2 files" in out, out
        assert "deleted 1 files it had added" in out and "could not" not in out, out
    finally:
        yml.write_text(text)
        greet.write_text(GREET)
        extra.unlink()
    assert w.pipelines.get(found["pipelines.orders"]).spec.as_dict() == pipeline
    assert w.schemas.get(found["schemas.shop"]).comment == "the shop's tables"
    assert w.volumes.read(found["volumes.landing"]).comment == "where files land"
    grants = w.grants.get("schema", found["schemas.shop"]).privilege_assignments
    assert {p.value for g in grants if g.principal == "bob@example.com" for p in g.privileges} == {
        "USE_SCHEMA", "CREATE_TABLE"}, "the grant the failed deploy added was taken back"
    assert ids(server, project) == found, "no new state was written"
    root = root_path(w, "dev")
    with pytest.raises(errors.NotFound):
        w.workspace.get_status(f"{root}/files/src/extra.txt")
    assert w.workspace.get_status(f"{root}/files/src/greet").object_type.value == "NOTEBOOK"
    out = ok(server, project, "run", "etl")
    run = w.jobs.get_run(int(re.search(r"/runs/(\d+)", out).group(1)))
    assert w.jobs.get_run_output(run.tasks[0].run_id).notebook_output.result == "hello", "the old notebook ran"
    assert "Uploaded 0 files" in ok(server, project, "deploy"), "nothing changed since"


FIRST_DEPLOY = """\
bundle:
  name: first
resources:
  experiments:
    tries:
      name: /Users/${workspace.current_user.userName}/first_tries
  schemas:
    first:
      catalog_name: main
      name: first_schema
  jobs:
    job:
      name: first_job
      tasks:
        - task_key: a
          DEPENDS
          notebook_task:
            notebook_path: ./nb.py
targets:
  dev:
    mode: development
    default: true
"""


def test_a_failed_first_deploy_leaves_nothing_and_can_be_retried(server, w, tmp_path):
    (tmp_path / "nb.py").write_text(GREET)
    yml = tmp_path / "databricks.yml"
    yml.write_text(FIRST_DEPLOY.replace("DEPENDS", "depends_on: [{task_key: ghost}]"))
    code, out = bundle(server, tmp_path, "deploy")
    assert code != 0 and "deleted the new experiments" in out and "deleted the new schemas" in out, out
    assert "deleted 2 files it had added" in out and "could not" not in out, out
    me = w.current_user.me().user_name
    with pytest.raises(errors.NotFound):
        w.schemas.get("main.first_schema")
    with pytest.raises(errors.NotFound):
        w.workspace.get_status(f"/Workspace/Users/{me}/.bundle/first/dev/files/nb")
    assert "job: not deployed" in ok(server, tmp_path, "summary")
    # The experiment the rollback deleted keeps its name; the retry brings it back.
    yml.write_text(FIRST_DEPLOY.replace("DEPENDS", "description: fixed"))
    out = ok(server, tmp_path, "deploy")
    assert "created experiments.tries" in out, out
    found = ids(server, tmp_path)
    assert w.experiments.get_experiment(found["experiments.tries"]).experiment.lifecycle_stage == "active"
    ok(server, tmp_path, "destroy", "--auto-approve")


def test_production_target(server, w, project):
    out = ok(server, project, "deploy", "-t", "prod")
    assert "created jobs.etl" in out, out
    found = ids(server, project, "-t", "prod")
    job = w.jobs.get(int(found["jobs.etl"])).settings
    assert job.name == "shop_etl"
    assert job.schedule.pause_status in (None, jobs.PauseStatus.UNPAUSED)
    assert job.tasks[0].notebook_task.base_parameters == {"greeting": "bonjour"}
    assert w.pipelines.get(found["pipelines.orders"]).spec.development in (None, False)
    assert found["jobs.etl"] != ids(server, project)["jobs.etl"]
    # The top-level permissions reach the root folder, CAN_VIEW as CAN_READ.
    root = w.workspace.get_status(f"/Users/{w.current_user.me().user_name}/.bundle/shop/prod")
    folder = w.permissions.get("directories", str(root.object_id)).access_control_list
    assert any(a.group_name == "users" and a.all_permissions[0].permission_level.value == "CAN_READ"
               for a in folder), folder


def test_the_lock_keeps_two_deploys_apart(server, w, project):
    lock = f"{root_path(w, 'prod')}/state/deploy.lock"
    body = json.dumps({"ID": "someone-else", "AcquisitionTime": "2026-12-03T10:00:00Z", "IsForced": False, "User": "erin@example.com"})
    server.raw("POST", f"/api/2.0/workspace-files/import-file{lock}", params={"overwrite": "true"}, data=body)
    code, out = bundle(server, project, "deploy", "-t", "prod")
    assert code != 0 and "erin@example.com" in out and "--force-lock" in out, out
    assert "unchanged jobs.etl" in ok(server, project, "deploy", "-t", "prod", "--force-lock")
    with pytest.raises(errors.NotFound):
        w.workspace.get_status(lock)


def test_summary_lists_the_resources(server, project):
    out = ok(server, project, "summary")
    found = ids(server, project)
    assert f"etl: id {found['jobs.etl']}, {server.url}/jobs/{found['jobs.etl']}" in out, out
    assert f"{server.url}/pipelines/{found['pipelines.orders']}" in out
    assert f"{server.url}/ml/experiments/{found['experiments.runs']}" in out
    assert f"{server.url}/explore/data/main/" in out


def test_destroy(server, w, project):
    code, out = bundle(server, project, "destroy")
    assert code != 0 and "--auto-approve" in out, out
    for target in (["-t", "dev"], ["-t", "prod"]):
        found = ids(server, project, *target)
        out = ok(server, project, "destroy", "--auto-approve", *target)
        assert f"deleted jobs.etl (id {found['jobs.etl']})" in out, out
        with pytest.raises(errors.NotFound):
            w.jobs.get(int(found["jobs.etl"]))
        with pytest.raises(errors.NotFound):
            w.pipelines.get(found["pipelines.orders"])
        with pytest.raises(errors.NotFound):
            w.schemas.get(found["schemas.shop"])
        experiment = w.experiments.get_experiment(found["experiments.runs"]).experiment
        assert experiment.lifecycle_stage == "deleted"
        with pytest.raises(errors.NotFound):
            w.workspace.get_status(root_path(w, target[1]))
    assert "etl: not deployed" in ok(server, project, "summary")


MAKE_WHEEL = """\
\"\"\"Builds dist/greeter-0.1-py3-none-any.whl by hand: no build backend needed.\"\"\"
import os
import zipfile

os.makedirs("dist", exist_ok=True)
info = "greeter-0.1.dist-info"
with zipfile.ZipFile("dist/greeter-0.1-py3-none-any.whl", "w") as z:
    z.writestr("greeter/__init__.py", "def main():\\n    print('greetings from the wheel')\\n")
    z.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\\nName: greeter\\nVersion: 0.1\\n")
    z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\\nGenerator: hand\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
    z.writestr(f"{info}/entry_points.txt", "[console_scripts]\\nmain = greeter:main\\n")
    z.writestr(f"{info}/RECORD", "")
"""

WHEEL_BUNDLE = """\
bundle:
  name: wheels
artifacts:
  greeter:
    type: whl
    build: PYTHON make_wheel.py
    path: .
resources:
  jobs:
    wheel_job:
      name: wheel_job
      environments:
        - environment_key: default
          spec:
            client: "1"
            dependencies:
              - ./dist/*.whl
      tasks:
        - task_key: t
          environment_key: default
          python_wheel_task:
            package_name: greeter
            entry_point: main
targets:
  dev:
    mode: development
    default: true
"""


def test_an_artifact_is_built_uploaded_and_installed(server, w, tmp_path):
    (tmp_path / "make_wheel.py").write_text(MAKE_WHEEL)
    (tmp_path / "databricks.yml").write_text(WHEEL_BUNDLE.replace("PYTHON", sys.executable))
    ok(server, tmp_path, "deploy")
    job_id = int(ids(server, tmp_path)["jobs.wheel_job"])
    me = w.current_user.me().user_name
    wheel = f"/Workspace/Users/{me}/.bundle/wheels/dev/artifacts/.internal/greeter-0.1-py3-none-any.whl"
    assert w.jobs.get(job_id).settings.environments[0].spec.dependencies == [wheel]
    assert w.workspace.get_status(wheel).object_type.value == "FILE"
    out = ok(server, tmp_path, "run", "wheel_job")
    run_id = int(re.search(r"/runs/(\d+)", out).group(1))
    task = w.jobs.get_run(run_id).tasks[0]
    assert "greetings from the wheel" in w.jobs.get_run_output(task.run_id).logs
    ok(server, tmp_path, "destroy", "--auto-approve")


REGISTRY_BUNDLE = """\
bundle:
  name: registry
permissions:
  - group_name: users
    level: CAN_VIEW
resources:
  secret_scopes:
    keys:
      name: registry_keys
      permissions:
        - user_name: bob@example.com
          level: READ
  models:
    churn:
      name: churn
      description: DESCRIPTION
  registered_models:
    scorer:
      catalog_name: main
      schema_name: default
      name: scorer
      comment: DESCRIPTION
targets:
  dev:
    mode: development
    default: true
"""


def test_secret_scopes_and_models(server, w, tmp_path):
    """The registry's resources and a secret scope: deployed with the
    development prefix, updated in place, destroyed."""
    (tmp_path / "databricks.yml").write_text(REGISTRY_BUNDLE.replace("DESCRIPTION", "first"))
    out = ok(server, tmp_path, "deploy")
    for key in ["secret_scopes.keys", "models.churn", "registered_models.scorer"]:
        assert f"created {key}" in out, out
    found = ids(server, tmp_path)
    assert "registry_keys" in [s.name for s in w.secrets.list_scopes()]
    acls = {a.principal: a.permission.value for a in w.secrets.list_acls(found["secret_scopes.keys"])}
    assert acls.get("bob@example.com") == "READ" and acls.get("users") == "READ", acls
    model = w.model_registry.get_model(found["models.churn"]).registered_model_databricks
    assert model.name == "[dev admin] churn" and model.description == "first"
    scorer = w.registered_models.get(found["registered_models.scorer"])
    assert scorer.full_name == "main.default.dev_admin_scorer" and scorer.comment == "first"

    (tmp_path / "databricks.yml").write_text(REGISTRY_BUNDLE.replace("DESCRIPTION", "second"))
    out = ok(server, tmp_path, "deploy")
    assert "updated models.churn" in out and "updated registered_models.scorer" in out, out
    assert ids(server, tmp_path) == found
    assert w.model_registry.get_model(found["models.churn"]).registered_model_databricks.description == "second"
    assert w.registered_models.get(found["registered_models.scorer"]).comment == "second"

    ok(server, tmp_path, "destroy", "--auto-approve")
    assert "registry_keys" not in [s.name for s in w.secrets.list_scopes()]
    with pytest.raises(errors.NotFound):
        w.model_registry.get_model(found["models.churn"])
    with pytest.raises(errors.NotFound):
        w.registered_models.get(found["registered_models.scorer"])


JUPYTER_BUNDLE = """\
bundle:
  name: jupyter
resources:
  jobs:
    book:
      name: book
      tasks:
        - task_key: t
          notebook_task:
            notebook_path: ./src/NOTEBOOK
targets:
  dev:
    mode: development
    default: true
"""


def test_an_ipynb_notebook_is_synced_run_and_removed(server, w, tmp_path):
    """An `.ipynb` is a notebook in the workspace (without its extension):
    the job runs it, and a deploy without it deletes that notebook."""
    book = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                       "source": ["dbutils.notebook.exit('from jupyter')"]}],
            "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "book.ipynb").write_text(json.dumps(book))
    (tmp_path / "databricks.yml").write_text(JUPYTER_BUNDLE.replace("NOTEBOOK", "book.ipynb"))
    ok(server, tmp_path, "deploy")
    files = f"/Users/{w.current_user.me().user_name}/.bundle/jupyter/dev/files/src"
    assert w.workspace.get_status(f"{files}/book").object_type.value == "NOTEBOOK"
    job_id = int(ids(server, tmp_path)["jobs.book"])
    run = w.jobs.run_now_and_wait(job_id)
    assert w.jobs.get_run_output(run.tasks[0].run_id).notebook_output.result == "from jupyter"

    (tmp_path / "src" / "book.ipynb").unlink()
    (tmp_path / "src" / "plain.py").write_text("# Databricks notebook source\ndbutils.notebook.exit('plain')\n")
    (tmp_path / "databricks.yml").write_text(JUPYTER_BUNDLE.replace("NOTEBOOK", "plain.py"))
    ok(server, tmp_path, "deploy")
    with pytest.raises(errors.NotFound):
        w.workspace.get_status(f"{files}/book")
    ok(server, tmp_path, "destroy", "--auto-approve")
