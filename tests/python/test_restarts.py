"""Each test here runs its own tarn: autotermination, shutdown, crash and
restart, and the orphans an earlier tarn could leave."""

import datetime
import os
import signal
import subprocess

from pathlib import Path
import time

from databricks.sdk.service.compute import EventType, GetEventsOrder, State

from conftest import Tarn, pid_alive, tarn_binary, wait_for

SPARK_VERSION = "16.4.x-scala2.13"
WAIT = datetime.timedelta(minutes=3)


def engines_of(home) -> list[int]:
    """Pids of live engines launched by the tarn whose home this is."""
    launcher = str(home / "runtime" / "engine.py").encode()
    pids = []
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if launcher in stat.read_bytes() and pid_alive(int(stat.parent.name)):
                pids.append(int(stat.parent.name))
        except OSError:
            pass
    return pids


def test_idle_cluster_terminates_by_itself(tmp_home):
    # TARN_TEST_MINUTE_MS shortens the autotermination minute (test-only):
    # 10 "minutes" of 100 ms. The SDK's waiters poll every 1-10 s, too
    # slowly to see a 1 s RUNNING window, so the event log is the witness.
    tarn = Tarn(tmp_home, {"TARN_TEST_MINUTE_MS": "100"}).start()
    try:
        w = tarn.client()
        keeper = w.clusters.create(spark_version=SPARK_VERSION, autotermination_minutes=0).result(timeout=WAIT)
        idle = w.clusters.create(spark_version=SPARK_VERSION, autotermination_minutes=10).response.cluster_id
        done = wait_for(lambda: (c := w.clusters.get(idle)).state == State.TERMINATED and c, timeout=120)
        assert done.termination_reason.code.value == "INACTIVITY"
        assert done.termination_reason.parameters["inactivity_duration_min"] == "10"
        kinds = [e.type for e in w.clusters.events(idle, order=GetEventsOrder.ASC)]
        assert kinds == [EventType.CREATING, EventType.RUNNING, EventType.TERMINATING]
        time.sleep(1.5)
        assert w.clusters.get(keeper.cluster_id).state == State.RUNNING
        assert engines_of(tmp_home) == [keeper.spark_context_id]
    finally:
        tarn.stop()


def test_clean_shutdown_stops_engines_and_says_why(tmp_home):
    tarn = Tarn(tmp_home).start()
    c = tarn.client().clusters.create_and_wait(spark_version=SPARK_VERSION, timeout=WAIT)
    tarn.stop(signal.SIGTERM)
    assert not pid_alive(c.spark_context_id)
    again = Tarn(tmp_home).start()
    try:
        after = again.client().clusters.get(c.cluster_id)
        assert after.state == State.TERMINATED
        assert after.termination_reason.code.value == "COMMUNICATION_LOST"
    finally:
        again.stop()


def test_crash_leaves_no_engine_behind(tmp_home):
    tarn = Tarn(tmp_home).start()
    c = tarn.client().clusters.create_and_wait(spark_version=SPARK_VERSION, timeout=WAIT)
    tarn.stop(signal.SIGKILL)
    # The engine notices its stdin closing with the dead tarn.
    wait_for(lambda: not pid_alive(c.spark_context_id), timeout=20)
    again = Tarn(tmp_home).start()
    try:
        after = again.client().clusters.get(c.cluster_id)
        assert after.state == State.TERMINATED
        assert "tarn restarted while the cluster was RUNNING" in after.termination_reason.parameters["databricks_error_message"]
    finally:
        again.stop()


def test_restart_stops_an_engine_the_old_tarn_left_running(tmp_home):
    tarn = Tarn(tmp_home).start()
    c = tarn.client().clusters.create_and_wait(spark_version=SPARK_VERSION, timeout=WAIT)
    pid = c.spark_context_id
    # A frozen engine cannot notice tarn dying; only the next tarn can stop it.
    os.kill(pid, signal.SIGSTOP)
    tarn.stop(signal.SIGKILL)
    assert pid_alive(pid)
    again = Tarn(tmp_home).start()
    try:
        assert not pid_alive(pid)
        after = again.client().clusters.get(c.cluster_id)
        assert after.state == State.TERMINATED
        assert f"its engine process {pid} was stopped" in after.termination_reason.parameters["databricks_error_message"]
        w = again.client()
        w.clusters.start(c.cluster_id).result(timeout=WAIT)
        assert w.clusters.get(c.cluster_id).state == State.RUNNING
    finally:
        again.stop()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_second_serve_on_the_same_workspace_is_refused(tmp_home):
    """Two serves on one workspace's metadata would each end the other's
    runs as a crashed tarn's leftovers: the second is refused while the
    first holds the workspace lease, and a first killed with -9 is
    replaced at once."""
    first = Tarn(tmp_home).start()
    try:
        w = first.client()
        cluster = w.clusters.create(cluster_name="kept", spark_version=SPARK_VERSION, num_workers=0)
        second = subprocess.run([tarn_binary(), "serve", "--port", "0", "--spark-connect-port", "0"],
                                env=dict(os.environ, TARN_HOME=str(tmp_home)), capture_output=True, text=True,
                                timeout=60)
        assert second.returncode != 0
        assert "another tarn serve" in second.stderr and str(first.proc.pid) in second.stderr
        # The first serves on, its cluster untouched.
        assert w.clusters.get(cluster.cluster_id).state in (State.PENDING, State.RUNNING)
        first.proc.kill()
        first.proc.wait()
        again = Tarn(tmp_home).start()
        assert again.client().clusters.get(cluster.cluster_id).cluster_name == "kept"
        again.stop()
    finally:
        first.stop()
