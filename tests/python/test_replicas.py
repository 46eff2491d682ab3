"""Two `tarn serve` replicas on one workspace (TARN_REPLICA=true) behind a
load balancer: every call works on either; the one holding the schedulers
lease runs the work, and when it is killed with -9 the other takes the
lease and finishes the runs in flight, every task run exactly once."""

import base64
import datetime
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs, workspace

from conftest import S3Server, Tarn, new_database, pid_alive, wait_for

# The engine launcher's byte pipe between two sockets.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python" / "tarn"))
from engine import pipe  # noqa: E402

REPLICA = {"TARN_REPLICA": "true", "TARN_JOB_PARALLEL_TASKS": "4"}
WAIT = datetime.timedelta(minutes=3)

TASK = """
import os, sys, time
key, seconds, marks = sys.argv[1], float(sys.argv[2]), sys.argv[3]
with open(os.path.join(marks, key + ".started"), "a") as f:
    f.write(f"{os.getpid()}\\n")
time.sleep(seconds)
with open(os.path.join(marks, key), "a") as f:
    f.write("ran\\n")
"""


class Balancer:
    """A round-robin TCP load balancer on loopback; a backend that refuses
    a connection is passed over, as a health-checking balancer does."""

    def __init__(self, backends):
        self.backends = backends
        self.next = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def connect(self):
        for _ in range(len(self.backends)):
            host, port = self.backends[self.next % len(self.backends)]
            self.next += 1
            try:
                return socket.create_connection((host, port), timeout=2)
            except OSError:
                continue
        return None

    def serve(self, client):
        upstream = self.connect()
        if upstream is None:
            client.close()
            return
        upstream.settimeout(None)
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self):
        self.server.close()


def address(tarn):
    host, port = tarn.url.removeprefix("http://").split(":")
    return host, int(port)


def test_replicas_serve_one_workspace_and_a_killed_holder_hands_its_runs_over(tmp_home):
    first = Tarn(tmp_home, REPLICA).start()
    second = Tarn(tmp_home, REPLICA).start()
    balancer = Balancer([address(first), address(second)])
    try:
        # Every call works on either replica: reads on the standby itself,
        # writes handed to the holder.
        for i, tarn in enumerate((first, second)):
            w = tarn.client()
            assert w.current_user.me().user_name == "admin"
            w.workspace.mkdirs(f"/Users/admin/replicas-{i}")
        standby = second.client()
        made = [o.path for o in standby.workspace.list("/Users/admin") if "/replicas-" in o.path]
        assert sorted(made) == ["/Users/admin/replicas-0", "/Users/admin/replicas-1"]
        marks = tmp_home / "marks"
        marks.mkdir()
        w = WorkspaceClient(host=balancer.url, token=first.token, auth_type="pat")
        w.workspace.import_("/Users/admin/replicas-task.py", content=base64.b64encode(TASK.encode()).decode(),
                            format=workspace.ImportFormat.AUTO, overwrite=True)
        keys = [f"t{i:02d}" for i in range(20)]
        tasks = [
            jobs.Task(
                task_key=key,
                depends_on=[jobs.TaskDependency(task_key=keys[i - 4])] if i >= 4 else [],
                spark_python_task=jobs.SparkPythonTask(
                    python_file="/Users/admin/replicas-task.py", parameters=[key, "2", str(marks)]
                ),
            )
            for i, key in enumerate(keys)
        ]
        job = w.jobs.create(name="twenty", tasks=tasks)
        run_id = w.jobs.run_now(job.job_id).run_id
        # Kill the holder while tasks run: some done, some started, some waiting.
        wait_for(lambda: len(list(marks.glob("t??"))) >= 5 and len(list(marks.glob("*.started"))) > len(list(marks.glob("t??"))),
                 timeout=300, interval=0.2)
        in_flight = {p.name.removesuffix(".started") for p in marks.glob("*.started")} - {p.name for p in marks.glob("t??")}
        first.proc.kill()
        first.proc.wait()
        # The standby takes the lease and drives the run to its end.
        run = wait_for(
            lambda: (r := standby.jobs.get_run(run_id)).state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED and r,
            timeout=300,
        )
        assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state.state_message
        # Once each: one attempt per task, one execution of its code.
        assert sorted(t.task_key for t in run.tasks) == keys
        assert all(t.attempt_number == 0 for t in run.tasks)
        for key in keys:
            assert (marks / key).read_text() == "ran\n", key
            assert len((marks / f"{key}.started").read_text().split()) == 1, key
        # The attempts in flight at the kill were taken over, not run again.
        assert in_flight
        for key in in_flight:
            task = next(t for t in run.tasks if t.task_key == key)
            assert "resumed" in standby.jobs.get_run_output(task.run_id).logs
        # The new holder answers what only the holder can: a new run.
        again = w.jobs.run_now(job.job_id).run_id
        assert again > run_id
        standby.jobs.cancel_run(again)
        assert not pid_alive(first.proc.pid)
    finally:
        balancer.close()
        second.stop()
        first.stop()


def test_a_stalled_holder_loses_the_lease_and_its_run_moves_on(tmp_home):
    """A holder that stops renewing (SIGSTOP) loses the lease once it
    expires; the standby resumes its run and takes over the attempt in
    flight; woken, the old holder finds the lease taken, writes nothing
    more and exits, leaving the attempt's worker to finish."""
    first = Tarn(tmp_home, REPLICA).start()
    second = Tarn(tmp_home, REPLICA).start()
    try:
        w = first.client()
        marks = tmp_home / "marks"
        marks.mkdir()
        w.workspace.import_("/Users/admin/replicas-task.py", content=base64.b64encode(TASK.encode()).decode(),
                            format=workspace.ImportFormat.AUTO, overwrite=True)
        task = lambda key, seconds, after=(): jobs.Task(  # noqa: E731
            task_key=key,
            depends_on=[jobs.TaskDependency(task_key=a) for a in after],
            spark_python_task=jobs.SparkPythonTask(python_file="/Users/admin/replicas-task.py",
                                                   parameters=[key, str(seconds), str(marks)]),
        )
        job = w.jobs.create(name="stall", tasks=[task("a", 25), task("b", 1, ["a"])])
        run_id = w.jobs.run_now(job.job_id).run_id
        wait_for(lambda: (marks / "a.started").exists(), timeout=300, interval=0.2)
        os.kill(first.proc.pid, signal.SIGSTOP)
        log = tmp_home / "serve.log"
        # The standby took the lease (15 s after the last renewal) and resumed the run, the only one.
        wait_for(lambda: "resuming a run left in flight" in log.read_text(), timeout=60, interval=0.5)
        os.kill(first.proc.pid, signal.SIGCONT)
        assert first.proc.wait(timeout=60) == 3
        standby = second.client()
        run = wait_for(
            lambda: (r := standby.jobs.get_run(run_id)).state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED and r,
            timeout=300,
        )
        failures = {t.task_key: standby.jobs.get_run_output(t.run_id).error for t in run.tasks
                    if t.state.result_state != jobs.RunResultState.SUCCESS}
        assert run.state.result_state == jobs.RunResultState.SUCCESS, (run.state.state_message, failures)
        assert sorted((t.task_key, t.attempt_number) for t in run.tasks) == [("a", 0), ("b", 0)]
        for key in ("a", "b"):
            assert (marks / key).read_text() == "ran\n"
            assert len((marks / f"{key}.started").read_text().split()) == 1
        a = next(t for t in run.tasks if t.task_key == "a")
        assert "resumed" in standby.jobs.get_run_output(a.run_id).logs
    finally:
        if first.proc.poll() is None:
            os.kill(first.proc.pid, signal.SIGCONT)
        second.stop()
        first.stop()


HELLO = "import sys\nprint('hello from', sys.argv[1])\n"


def test_replicas_on_their_own_homes_share_postgresql_and_an_object_store(tmp_path_factory):
    """As on two machines: each replica has a `TARN_HOME` of its own, the
    metadata is one PostgreSQL database and the data one object store. What
    either stored, the other serves, also once the first holder is killed."""
    if not os.environ.get("TARN_TEST_DATABASE_URL"):
        pytest.skip("replicas on their own homes share PostgreSQL metadata: the PostgreSQL pass runs this")
    s3 = S3Server(tmp_path_factory.mktemp("moto") / "access.log", prefix="replicas")
    database = new_database()
    homes = [tmp_path_factory.mktemp("machine-a"), tmp_path_factory.mktemp("machine-b")]
    for home in homes:
        (home / "tarn.toml").write_text(f'database_url = "{database}"\n')
    env = dict(s3.env, **REPLICA)
    first = Tarn(homes[0], env).start()
    second = Tarn(homes[1], env).start()
    try:
        standby = second.client(first.token)
        standby.workspace.mkdirs("/Users/admin/shared")
        standby.workspace.import_("/Users/admin/shared/hello.py", content=base64.b64encode(HELLO.encode()).decode(),
                                  format=workspace.ImportFormat.AUTO, overwrite=True)
        standby.dbfs.put("/shared/note.txt", contents=base64.b64encode(b"kept in the bucket").decode(), overwrite=True)
        assert base64.b64decode(standby.dbfs.read("/shared/note.txt").data) == b"kept in the bucket"

        def run_hello(word):
            task = jobs.SubmitTask(task_key="hello", spark_python_task=jobs.SparkPythonTask(
                python_file="/Users/admin/shared/hello.py", parameters=[word]))
            run = standby.jobs.submit_and_wait(run_name=word, tasks=[task], timeout=WAIT)
            assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
            return run.tasks[0].run_id

        # Run by the holder; its output read by the standby from the bucket.
        before = run_hello("the first holder")
        assert "hello from the first holder" in standby.jobs.get_run_output(before).logs
        first.proc.kill()
        first.proc.wait()
        # The second takes the lease on its own home: the workspace file,
        # DBFS and the first run's output are in the bucket, not on a disk.
        after = run_hello("the second holder")
        assert "hello from the second holder" in standby.jobs.get_run_output(after).logs
        assert "hello from the first holder" in standby.jobs.get_run_output(before).logs
        exported = standby.workspace.export("/Users/admin/shared/hello.py", format=workspace.ExportFormat.SOURCE)
        assert base64.b64decode(exported.content).decode() == HELLO
        assert base64.b64decode(standby.dbfs.read("/shared/note.txt").data) == b"kept in the bucket"
        for home in homes:
            for area in ("workspace", "dbfs", "jobs/runs"):
                assert not any(p.is_file() for p in (home / area).rglob("*")), f"{home}/{area}"
    finally:
        second.stop()
        first.stop()
        s3.stop()
        admin = os.environ["TARN_TEST_DATABASE_URL"]
        subprocess.run(["psql", admin, "-q", "-c", f"DROP DATABASE IF EXISTS {database.rsplit('/', 1)[1]} WITH (FORCE)"],
                       capture_output=True)
