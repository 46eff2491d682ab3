"""Git folders through databricks-sdk's `w.repos`, `w.git_credentials` and
`w.jobs`, against a real local git repository (the `git` binary): clone,
get, list, the checkout in the workspace tree (status, listing with
notebook detection, export), jobs running a repo's notebook, branch and tag
checkouts, refusals (unknown branch, unreachable URL, writes into a repo,
another user without rights), jobs with a `git_source`, git credentials,
delete, and a restart."""

import base64
import datetime
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pathlib import Path

import pytest
from conftest import Tarn, own_server
from databricks.sdk.errors import InvalidParameterValue, NotFound, PermissionDenied
from databricks.sdk.service import jobs, workspace

WAIT = datetime.timedelta(minutes=6)
CAROL = "carol@example.com"
HEADER = "# Databricks notebook source\n"


def git(cwd, *args):
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()


def notebook(value):
    return f'{HEADER}x = "{value}"\n\n# COMMAND ----------\n\ndbutils.notebook.exit(x)\n'


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """`main` (nb returns "main", tagged v1), `feature` (nb returns "feature")."""
    repo = tmp_path_factory.mktemp("origin") / "demo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "nb.py").write_text(notebook("main"))
    (repo / "README.md").write_text("# demo\n")
    (repo / "lib").mkdir()
    (repo / "lib" / "helper.py").write_text("print('helper says', 6 * 7)\n")
    (repo / "extra").mkdir()
    (repo / "extra" / "data.txt").write_text("not in a sparse checkout of lib\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "main")
    git(repo, "tag", "v1")
    main = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "nb.py").write_text(notebook("feature"))
    git(repo, "commit", "-q", "-am", "feature")
    feature = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    return {"path": str(repo), "url": repo.as_uri(), "main": main, "feature": feature}


@pytest.fixture(scope="module")
def server():
    yield from own_server("tarn-repos-")


@pytest.fixture(scope="module")
def w(server):
    return server.client()


@pytest.fixture(scope="module")
def me(w):
    return w.current_user.me().user_name


@pytest.fixture(scope="module")
def repo(w, me, origin):
    return w.repos.create(url=origin["path"], provider="gitHub", path=f"/Repos/{me}/demo")


def run_notebook(w, path):
    run = w.jobs.submit_and_wait(
        run_name="repo-notebook",
        tasks=[jobs.SubmitTask(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path=path))],
        timeout=WAIT,
    )
    output = w.jobs.get_run_output(run.tasks[0].run_id)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, output.error
    return output.notebook_output.result


def test_create_get_list_and_the_workspace_tree(w, me, origin, repo):
    assert (repo.branch, repo.head_commit_id, repo.provider) == ("main", origin["main"], "gitHub")
    assert repo.path == f"/Repos/{me}/demo" and repo.url == origin["path"]
    got = w.repos.get(repo.id)
    assert (got.id, got.path, got.branch, got.head_commit_id) == (repo.id, repo.path, "main", origin["main"])
    assert repo.id in [r.id for r in w.repos.list(path_prefix=f"/Repos/{me}")]
    assert repo.id not in [r.id for r in w.repos.list(path_prefix="/Repos/nobody")]

    status = w.workspace.get_status(repo.path)
    assert (status.object_type, status.object_id) == (workspace.ObjectType.REPO, repo.id)
    listed = {o.path.rsplit("/", 1)[1]: o for o in w.workspace.list(repo.path)}
    assert set(listed) == {"nb", "README.md", "lib", "extra"}
    assert (listed["nb"].object_type, listed["nb"].language) == (workspace.ObjectType.NOTEBOOK, workspace.Language.PYTHON)
    assert listed["README.md"].object_type == workspace.ObjectType.FILE
    assert listed["lib"].object_type == workspace.ObjectType.DIRECTORY
    assert [o.path for o in w.workspace.list(f"{repo.path}/lib")] == [f"{repo.path}/lib/helper.py"]
    exported = base64.b64decode(w.workspace.export(f"{repo.path}/nb", format=workspace.ExportFormat.SOURCE).content)
    assert exported.decode() == notebook("main")
    readme = w.workspace.export(f"{repo.path}/README.md", format=workspace.ExportFormat.AUTO).content
    assert base64.b64decode(readme) == b"# demo\n"

    # The Workspace API does not write into a Git folder.
    with pytest.raises(InvalidParameterValue, match="Git folder"):
        w.workspace.import_(f"{repo.path}/new.py", content=base64.b64encode(b"x = 1").decode(),
                            format=workspace.ImportFormat.AUTO)
    with pytest.raises(InvalidParameterValue, match="Git folder"):
        w.workspace.delete(f"{repo.path}/README.md")
    with pytest.raises(InvalidParameterValue, match="Git folders"):
        w.workspace.delete(f"/Repos/{me}", recursive=True)


def test_branches_tags_and_a_job_running_the_repo_notebook(w, origin, repo):
    nb = f"{repo.path}/nb"
    assert run_notebook(w, nb) == "main"

    w.repos.update(repo.id, branch="feature")
    got = w.repos.get(repo.id)
    assert (got.branch, got.head_commit_id) == ("feature", origin["feature"])
    assert run_notebook(w, nb) == "feature"

    # A tag leaves a detached HEAD: no branch.
    w.repos.update(repo.id, tag="v1")
    got = w.repos.get(repo.id)
    assert (got.branch, got.head_commit_id) == (None, origin["main"])

    # An unknown branch is refused and the checkout stays where it was.
    with pytest.raises(InvalidParameterValue, match="no-such-branch"):
        w.repos.update(repo.id, branch="no-such-branch")
    got = w.repos.get(repo.id)
    assert (got.branch, got.head_commit_id) == (None, origin["main"])
    content = base64.b64decode(w.workspace.export(nb, format=workspace.ExportFormat.SOURCE).content).decode()
    assert content == notebook("main")

    w.repos.update(repo.id, branch="main")
    assert w.repos.get(repo.id).branch == "main"


def test_bad_urls_and_providers_are_refused_and_leave_nothing(server, w, me):
    for url in ["/nonexistent/demo-missing.git", "https://127.0.0.1:9/demo-missing.git"]:
        with pytest.raises(InvalidParameterValue, match="demo-missing"):
            w.repos.create(url=url, provider="gitHub")
        with pytest.raises(NotFound):
            w.workspace.get_status(f"/Repos/{me}/demo-missing")
    assert not [p for p in (server.home / "repos").iterdir() if p.name.startswith(".tarn-staging")]
    with pytest.raises(InvalidParameterValue, match="provider"):
        w.repos.create(url="/tmp/x", provider="subversion")


def test_provider_names_in_any_case_and_the_default_path(w, me, origin, tmp_path):
    bare = tmp_path / "other.git"
    git(tmp_path, "clone", "-q", "--bare", origin["path"], str(bare))
    made = w.repos.create(url=bare.as_uri(), provider="GITLAB")
    try:
        assert (made.provider, made.path, made.branch) == ("gitLab", f"/Repos/{me}/other", "main")
    finally:
        w.repos.delete(made.id)


def test_sparse_checkout(w, me, origin):
    made = w.repos.create(url=origin["path"], provider="gitHub", path=f"/Repos/{me}/sparse",
                          sparse_checkout=workspace.SparseCheckout(patterns=["lib"]))
    try:
        assert w.repos.get(made.id).sparse_checkout.patterns == ["lib"]
        # Cone mode: the root's files and lib/, not extra/.
        assert {o.path.rsplit("/", 1)[1] for o in w.workspace.list(made.path)} == {"nb", "README.md", "lib"}
        w.repos.update(made.id, sparse_checkout=workspace.SparseCheckoutUpdate(patterns=["lib", "extra"]))
        assert "extra" in {o.path.rsplit("/", 1)[1] for o in w.workspace.list(made.path)}
    finally:
        w.repos.delete(made.id)


def git_job(w, origin, **revision):
    return w.jobs.create(
        name="from-git",
        git_source=jobs.GitSource(git_url=origin["url"], git_provider=jobs.GitProvider.GIT_HUB, **revision),
        tasks=[
            jobs.Task(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path="nb", source=jobs.Source.GIT)),
            jobs.Task(task_key="py", spark_python_task=jobs.SparkPythonTask(python_file="lib/helper.py")),
        ],
    )


def test_jobs_with_a_git_source(server, w, origin):
    cases = [({"git_branch": "main"}, "main", origin["main"]),
             ({"git_commit": origin["feature"]}, "feature", origin["feature"]),
             ({"git_tag": "v1"}, "main", origin["main"])]
    for revision, result, commit in cases:
        job = git_job(w, origin, **revision)
        run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
        tasks = {t.task_key: t for t in run.tasks}
        nb = w.jobs.get_run_output(tasks["nb"].run_id)
        assert run.state.result_state == jobs.RunResultState.SUCCESS, (nb.error, w.jobs.get_run_output(tasks["py"].run_id).error)
        assert nb.notebook_output.result == result
        assert "helper says 42" in w.jobs.get_run_output(tasks["py"].run_id).logs
        assert run.git_source.git_snapshot.used_commit == commit
        assert run.git_source.git_url == origin["url"]
        # The run's checkout is gone once the run ended.
        assert not (server.home / "jobs" / "git" / str(run.run_id)).exists()

    bad = git_job(w, origin, git_branch="nope")
    run = w.jobs.run_now_and_wait(bad.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert "nope" in w.jobs.get_run_output(run.tasks[0].run_id).error


def test_git_credentials_never_show_their_token(server, w):
    made = w.git_credentials.create(git_provider="github", git_username="octo", personal_access_token="ghp_s3cret")
    assert (made.git_provider, made.git_username) == ("gitHub", "octo")
    raw = server.raw("GET", f"/api/2.0/git-credentials/{made.credential_id}")
    assert raw.ok and "ghp_s3cret" not in raw.text and "personal_access_token" not in raw.text
    assert "ghp_s3cret" not in server.raw("GET", "/api/2.0/git-credentials").text
    assert [c.credential_id for c in w.git_credentials.list()] == [made.credential_id]
    w.git_credentials.update(made.credential_id, git_provider="gitHub", git_username="octocat",
                             personal_access_token="ghp_other")
    assert w.git_credentials.get(made.credential_id).git_username == "octocat"
    # Another user sees none of them.
    carol = server.client(server.cli_token(CAROL))
    assert list(carol.git_credentials.list()) == []
    with pytest.raises(NotFound):
        carol.git_credentials.get(made.credential_id)
    w.git_credentials.delete(made.credential_id)
    with pytest.raises(NotFound):
        w.git_credentials.get(made.credential_id)
    with pytest.raises(InvalidParameterValue):
        w.git_credentials.create(git_provider="cvs", git_username="x", personal_access_token="y")


class GitOverHttp(BaseHTTPRequestHandler):
    """Smart HTTP through `git http-backend`, behind Basic auth."""

    root = ""
    expected = ""
    refused = 0

    def serve(self):
        if self.headers.get("Authorization") != self.expected:
            type(self).refused += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = dict(os.environ, GIT_PROJECT_ROOT=self.root, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                   QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_USER="octo",
                   CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)))
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)

    do_GET = do_POST = serve

    def log_message(self, *args):
        pass


def test_a_git_credential_authenticates_http_remotes(server, w, me, origin):
    GitOverHttp.root = str(Path(origin["path"]).parent)
    GitOverHttp.expected = "Basic " + base64.b64encode(b"octo:ghp_http_t0ken").decode()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), GitOverHttp)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/demo"
    try:
        # No credential: the remote refuses, and git is never left asking.
        with pytest.raises(InvalidParameterValue, match="Could not clone"):
            w.repos.create(url=url, provider="gitHub", path=f"/Repos/{me}/over-http")
        assert GitOverHttp.refused > 0
        made_credential = w.git_credentials.create(git_provider="gitHub", git_username="octo",
                                                   personal_access_token="ghp_http_t0ken", is_default_for_provider=True)
        made = w.repos.create(url=url, provider="gitHub", path=f"/Repos/{me}/over-http")
        assert made.head_commit_id == origin["main"]
        w.repos.update(made.id, branch="feature")
        assert w.repos.get(made.id).head_commit_id == origin["feature"]
        # A job's git_source over http uses the run's principal's credential.
        job = w.jobs.create(name="from-http", git_source=jobs.GitSource(
            git_url=url, git_provider=jobs.GitProvider.GIT_HUB, git_tag="v1"),
            tasks=[jobs.Task(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path="nb"))])
        run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
        assert w.jobs.get_run_output(run.tasks[0].run_id).notebook_output.result == "main"
        w.repos.delete(made.id)
        w.git_credentials.delete(made_credential.credential_id)
    finally:
        httpd.shutdown()
    assert "ghp_http_t0ken" not in (server.home / "serve.log").read_text(errors="replace")


def test_permissions_on_a_repo(server, w, me, origin):
    made = w.repos.create(url=origin["path"], provider="gitHub", path=f"/Repos/{me}/guarded")
    carol = server.client(server.cli_token(CAROL))
    with pytest.raises(PermissionDenied):
        carol.repos.get(made.id)
    with pytest.raises(PermissionDenied):
        carol.repos.update(made.id, branch="feature")
    assert made.id not in [r.id for r in carol.repos.list()]
    owners = {(a.user_name, p.permission_level.value) for a in w.repos.get_permissions(str(made.id)).access_control_list
              for p in a.all_permissions}
    assert (me, "CAN_MANAGE") in owners

    w.repos.update_permissions(str(made.id), access_control_list=[
        workspace.RepoAccessControlRequest(user_name=CAROL, permission_level=workspace.RepoPermissionLevel.CAN_READ)])
    assert carol.repos.get(made.id).path == made.path
    assert made.id in [r.id for r in carol.repos.list()]
    assert carol.workspace.get_status(f"{made.path}/nb").object_type == workspace.ObjectType.NOTEBOOK
    with pytest.raises(PermissionDenied):
        carol.repos.update(made.id, branch="feature")

    w.repos.update_permissions(str(made.id), access_control_list=[
        workspace.RepoAccessControlRequest(user_name=CAROL, permission_level=workspace.RepoPermissionLevel.CAN_EDIT)])
    carol.repos.update(made.id, branch="feature")
    assert w.repos.get(made.id).branch == "feature"
    with pytest.raises(PermissionDenied):
        carol.repos.delete(made.id)

    # Carol's own folder is hers (the clone is tried, and fails on a dead
    # remote); another's is not.
    with pytest.raises(InvalidParameterValue, match="Could not clone"):
        carol.repos.create(url="http://127.0.0.1:9/nowhere.git", provider="gitHub", path=f"/Repos/{CAROL}/mine")
    with pytest.raises(PermissionDenied):
        carol.repos.create(url="http://127.0.0.1:9/nowhere.git", provider="gitHub", path=f"/Repos/{me}/hers")
    # A path on the server is an admin's to clone, in a repo or a job.
    with pytest.raises(PermissionDenied, match="admins"):
        carol.repos.create(url=origin["path"], provider="gitHub", path=f"/Repos/{CAROL}/local")
    with pytest.raises(PermissionDenied, match="admins"):
        carol.jobs.create(name="local-git", git_source=jobs.GitSource(
            git_url=origin["url"], git_provider=jobs.GitProvider.GIT_HUB, git_branch="main"),
            tasks=[jobs.Task(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path="nb"))])
    w.repos.delete(made.id)


def test_delete_removes_the_repo_from_the_workspace(server, w, me, origin):
    made = w.repos.create(url=origin["path"], provider="gitHub", path=f"/Repos/{me}/short-lived")
    checkout = server.home / "repos" / str(made.id)
    assert (checkout / "nb.py").exists()
    w.repos.delete(made.id)
    with pytest.raises(NotFound):
        w.repos.get(made.id)
    with pytest.raises(NotFound):
        w.workspace.get_status(made.path)
    assert not checkout.exists()


def test_repos_survive_a_restart(tmp_home, origin):
    tarn = Tarn(tmp_home).start()
    try:
        w = tarn.client()
        me = w.current_user.me().user_name
        made = w.repos.create(url=origin["path"], provider="gitHub", path=f"/Repos/{me}/kept")
        w.repos.update(made.id, branch="feature")
    finally:
        tarn.stop()
    again = Tarn(tmp_home).start()
    try:
        w = again.client()
        got = w.repos.get(made.id)
        assert (got.path, got.branch, got.head_commit_id) == (made.path, "feature", origin["feature"])
        assert w.workspace.get_status(f"{made.path}/nb").object_type == workspace.ObjectType.NOTEBOOK
        content = base64.b64decode(w.workspace.export(f"{made.path}/nb", format=workspace.ExportFormat.SOURCE).content)
        assert content.decode() == notebook("feature")
    finally:
        again.stop()
