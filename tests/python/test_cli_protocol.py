"""The databricks CLI's bundle protocol, replayed through databricks-sdk's
`ApiClient`: the requests `databricks bundle deploy`, `bundle run` and
`bundle destroy` (direct engine) send, in their order, as the CLI's
recorded request logs show them. The Go CLI cannot be installed here, so
this is how tarn's side of that protocol is checked."""

import json
import time
import uuid

import pytest
from databricks.sdk.errors import InvalidParameterValue, NotFound, ResourceAlreadyExists
from databricks.sdk.service import jobs

NOTEBOOK = b"""# Databricks notebook source
dbutils.widgets.text("greeting", "")

# COMMAND ----------

dbutils.notebook.exit("said " + dbutils.widgets.get("greeting"))
"""


def import_file(w, path, content: bytes, overwrite: bool):
    """What the CLI's workspace filer does: import-file, and on a missing
    parent, mkdirs and again."""
    url = f"/api/2.0/workspace-files/import-file/{path.lstrip('/')}"
    query = {"overwrite": "true" if overwrite else "false"}
    try:
        w.api_client.do("POST", url, query=query, data=content)
    except NotFound:
        w.api_client.do("POST", "/api/2.0/workspace/mkdirs", body={"path": path.rsplit("/", 1)[0]})
        w.api_client.do("POST", url, query=query, data=content)


def export_raw(w, path) -> bytes:
    response = w.api_client.do(
        "GET", "/api/2.0/workspace/export", query={"path": path, "direct_download": "true"}, raw=True
    )
    return response["contents"].read()


def status(w, path):
    return w.api_client.do(
        "GET", "/api/2.0/workspace/get-status", query={"path": path, "return_export_info": "true"}
    )


def test_deploy_run_destroy_as_the_cli_sends_them(w):
    me = w.api_client.do("GET", "/api/2.0/preview/scim/v2/Me")
    assert "workspace_id" in w.api_client.do("GET", "/.well-known/databricks-config")
    root = f"/Workspace/Users/{me['userName']}/.bundle/replay_{uuid.uuid4().hex[:6]}/dev"
    state = f"{root}/state"

    # Engine detection: neither state file exists before the first deploy.
    for name in ["resources.json", "terraform.tfstate"]:
        with pytest.raises(NotFound):
            status(w, f"{state}/{name}")

    # The lock: created without overwrite (its parent made on the 404), read
    # back and compared; a second deploy's attempt finds it taken.
    lock = {"ID": str(uuid.uuid4()), "AcquisitionTime": "2026-12-03T10:00:00Z", "IsForced": False,
            "User": me["userName"]}
    import_file(w, f"{state}/deploy.lock", json.dumps(lock).encode(), overwrite=False)
    assert json.loads(export_raw(w, f"{state}/deploy.lock"))["ID"] == lock["ID"]
    with pytest.raises(ResourceAlreadyExists):
        import_file(w, f"{state}/deploy.lock", b"{}", overwrite=False)

    # File sync: a `.py` with the notebook header becomes a notebook named
    # without `.py`; any other file keeps its name and bytes.
    import_file(w, f"{root}/files/src/notebook.py", NOTEBOOK, overwrite=True)
    import_file(w, f"{root}/files/src/helpers.py", b"def helper():\n    return 1\n", overwrite=True)
    import_file(w, f"{root}/files/src/helpers.py", b"def helper():\n    return 2\n", overwrite=True)
    notebook = status(w, f"{root}/files/src/notebook")
    assert notebook["object_type"] == "NOTEBOOK" and notebook["language"] == "PYTHON"
    helpers = status(w, f"{root}/files/src/helpers.py")
    assert helpers["object_type"] == "FILE" and helpers["size"] == len(b"def helper():\n    return 2\n")
    assert export_raw(w, f"{root}/files/src/helpers.py") == b"def helper():\n    return 2\n"
    # A wheel past `workspace/import`'s 10 MB goes up as a file.
    wheel = bytes(range(256)) * ((11 << 20) // 256)
    import_file(w, f"{root}/artifacts/.internal/big-0.1-py3-none-any.whl", wheel, overwrite=True)
    assert status(w, f"{root}/artifacts/.internal/big-0.1-py3-none-any.whl")["size"] == len(wheel)

    # Resources, marked as the bundle's.
    deployment = {"kind": "BUNDLE", "metadata_file_path": f"{state}/metadata.json"}
    job_settings = {
        "name": "[dev admin] replay job",
        "deployment": deployment,
        "edit_mode": "UI_LOCKED",
        "format": "MULTI_TASK",
        "max_concurrent_runs": 4,
        "tasks": [{
            "task_key": "greet",
            "notebook_task": {"notebook_path": f"{root}/files/src/notebook",
                              "base_parameters": {"greeting": "hello"}, "source": "WORKSPACE"},
        }],
    }
    job_id = w.api_client.do("POST", "/api/2.2/jobs/create", body=job_settings)["job_id"]
    job = w.jobs.get(job_id)
    assert job.settings.deployment.kind == jobs.JobDeploymentKind.BUNDLE
    assert job.settings.deployment.metadata_file_path == f"{state}/metadata.json"
    assert job.settings.edit_mode == jobs.JobEditMode.UI_LOCKED
    pipeline = w.api_client.do("POST", "/api/2.0/pipelines", body={
        "name": "[dev admin] replay pipeline", "deployment": deployment, "development": True,
        "libraries": [{"notebook": {"path": f"{root}/files/src/notebook"}}], "serverless": True,
    })
    pipeline_id = pipeline["pipeline_id"]
    assert w.pipelines.get(pipeline_id).spec.deployment.kind.value == "BUNDLE"

    # A redeploy resets the job in place: same id, the deployment kept.
    job_settings["tasks"][0]["notebook_task"]["base_parameters"]["greeting"] = "again"
    w.api_client.do("POST", "/api/2.2/jobs/reset", body={"job_id": job_id, "new_settings": job_settings})
    assert w.jobs.get(job_id).settings.deployment.kind == jobs.JobDeploymentKind.BUNDLE

    # State files, then the lock released.
    files = [{"local_path": "src/notebook.py", "is_notebook": True},
             {"local_path": "src/helpers.py", "is_notebook": False}]
    state_files = {
        "deployment.json": {"version": 1, "seq": 1, "cli_version": "replay", "timestamp": "2026-12-03T10:00:01Z",
                            "files": files, "id": str(uuid.uuid4())},
        "metadata.json": {"version": 1, "config": {"bundle": {"name": "replay", "target": "dev"},
                                                   "workspace": {"file_path": f"{root}/files"},
                                                   "resources": {"jobs": {"greet": {"id": str(job_id)}}}}},
        "resources.json": {"state_version": 2, "cli_version": "replay", "lineage": str(uuid.uuid4()), "serial": 1,
                           "state": {"resources.jobs.greet": {"__id__": str(job_id)},
                                     "resources.pipelines.p": {"__id__": pipeline_id}}},
    }
    for name, body in state_files.items():
        import_file(w, f"{state}/{name}", json.dumps(body).encode(), overwrite=True)
    w.api_client.do("POST", "/api/2.0/workspace/delete", body={"path": f"{state}/deploy.lock"})
    with pytest.raises(NotFound):
        status(w, f"{state}/deploy.lock")
    assert json.loads(export_raw(w, f"{state}/resources.json")) == state_files["resources.json"]
    assert status(w, f"{state}/resources.json")["object_type"] == "FILE"

    # `bundle run`: run-now on 2.2, then runs/get until the run ends.
    run_id = w.api_client.do("POST", "/api/2.2/jobs/run-now", body={"job_id": job_id})["run_id"]
    deadline = time.time() + 300
    while True:
        run = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": run_id})
        if run["state"].get("life_cycle_state") in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED"):
            break
        assert time.time() < deadline, run["state"]
        time.sleep(0.5)
    assert run["state"]["result_state"] == "SUCCESS", run["state"]
    output = w.jobs.get_run_output(run["tasks"][0]["run_id"])
    assert output.notebook_output.result == "said again"

    # The CLI's telemetry is taken and dropped.
    taken = w.api_client.do("POST", "/telemetry-ext", body={"uploadTime": 1, "items": [], "protoLogs": ["{}"]})
    assert taken["errors"] == [] and taken["numProtoSuccess"] == 1

    # `bundle destroy`: each resource, then the root, recursively.
    w.api_client.do("POST", "/api/2.2/jobs/delete", body={"job_id": job_id})
    w.api_client.do("DELETE", f"/api/2.0/pipelines/{pipeline_id}")
    w.api_client.do("POST", "/api/2.0/workspace/delete", body={"path": root, "recursive": True})
    with pytest.raises(NotFound):
        status(w, root)
    with pytest.raises(Exception):
        w.jobs.get(job_id)


def test_bad_deployment_fields_are_refused_and_nothing_is_stored(w):
    before = {j.job_id for j in w.jobs.list()}
    for bad in [{"deployment": {"kind": "TERRAFORM"}}, {"deployment": {}}, {"edit_mode": "LOCKED"}]:
        with pytest.raises(InvalidParameterValue):
            w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "bad", **bad})
    assert {j.job_id for j in w.jobs.list()} == before
    with pytest.raises(InvalidParameterValue):
        w.api_client.do("POST", "/api/2.0/pipelines", body={"name": "bad", "deployment": {"kind": "SYSTEM_MANAGED"}})
