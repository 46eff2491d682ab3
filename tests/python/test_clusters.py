"""Clusters through databricks-sdk against a live tarn with real Sail engines."""

import datetime

import pytest
from databricks.sdk import errors
from databricks.sdk.service.compute import AutoScale, ClusterDetails, EventType, GetEventsOrder, ListClustersFilterBy, State

from conftest import pid_alive, wait_for

SPARK_VERSION = "16.4.x-scala2.13"
WAIT = datetime.timedelta(minutes=3)


@pytest.fixture(scope="module")
def spark_count(tarn):
    def count(cluster: ClusterDetails) -> int:
        spark = tarn.spark(cluster)
        try:
            return spark.range(10).count()
        finally:
            spark.stop()

    return count


def event_types(w, cluster_id, **kw):
    return [e.type for e in w.clusters.events(cluster_id, order=GetEventsOrder.ASC, **kw)]


@pytest.fixture(scope="module")
def running(w):
    """One cluster shared by the lifecycle tests, RUNNING on entry."""
    c = w.clusters.create_and_wait(cluster_name="shared", spark_version=SPARK_VERSION, num_workers=1, timeout=WAIT)
    yield c
    w.clusters.permanent_delete(c.cluster_id)


def test_create_and_wait_runs_a_real_engine(w, running, spark_count):
    assert running.state == State.RUNNING
    assert running.num_workers == 1
    assert running.default_tags["SparkConnectUrl"].startswith("sc://localhost:")
    assert running.default_tags["SparkConnectUrl"].endswith(f";x-databricks-cluster-id={running.cluster_id}")
    assert pid_alive(running.spark_context_id)
    assert spark_count(running) == 10
    assert event_types(w, running.cluster_id)[:2] == [EventType.CREATING, EventType.RUNNING]


def test_start_on_a_running_cluster_is_invalid_state(w, running):
    with pytest.raises(errors.InvalidState):
        w.clusters.start(running.cluster_id)


def test_resize_restarts_the_engine_with_new_parallelism(w, running, spark_count):
    c = w.clusters.resize(running.cluster_id, num_workers=2).result(timeout=WAIT)
    assert c.state == State.RUNNING and c.num_workers == 2
    assert c.spark_context_id != running.spark_context_id
    assert not pid_alive(running.spark_context_id)
    resizing = [e for e in w.clusters.events(running.cluster_id, event_types=[EventType.RESIZING])]
    assert resizing[0].details.target_num_workers == 2 and resizing[0].details.current_num_workers == 1
    scaled = w.clusters.resize(running.cluster_id, autoscale=AutoScale(min_workers=1, max_workers=3)).result(timeout=WAIT)
    assert scaled.autoscale.max_workers == 3 and scaled.num_workers == 3
    assert spark_count(scaled) == 10


def test_restart_gives_a_fresh_engine(w, running, spark_count):
    before = w.clusters.get(running.cluster_id)
    after = w.clusters.restart(running.cluster_id).result(timeout=WAIT)
    assert after.state == State.RUNNING and after.spark_context_id != before.spark_context_id
    assert after.last_restarted_time >= before.start_time
    assert EventType.RESTARTING in event_types(w, running.cluster_id)
    assert spark_count(after) == 10


def test_edit_pin_and_unpin(w, running):
    w.clusters.edit(running.cluster_id, spark_version=SPARK_VERSION, cluster_name="renamed", num_workers=1).result(timeout=WAIT)
    c = w.clusters.get(running.cluster_id)
    assert c.cluster_name == "renamed" and c.state == State.RUNNING
    w.clusters.pin(running.cluster_id)
    assert running.cluster_id in [x.cluster_id for x in w.clusters.list(filter_by=ListClustersFilterBy(is_pinned=True))]
    w.clusters.unpin(running.cluster_id)
    kinds = event_types(w, running.cluster_id)
    assert {EventType.EDITED, EventType.PINNED, EventType.UNPINNED} <= set(kinds)


def test_terminate_start_and_permanent_delete(w, spark_count):
    c = w.clusters.create_and_wait(cluster_name="lifecycle", spark_version=SPARK_VERSION, timeout=WAIT)
    pid = c.spark_context_id
    done = w.clusters.delete_and_wait(c.cluster_id, timeout=WAIT)
    assert done.state == State.TERMINATED
    assert done.termination_reason.code.value == "USER_REQUEST"
    assert not pid_alive(pid)
    with pytest.raises(errors.InvalidState):
        w.clusters.restart(c.cluster_id)
    w.clusters.ensure_cluster_is_running(c.cluster_id)
    again = w.clusters.get(c.cluster_id)
    assert again.state == State.RUNNING and again.termination_reason is None
    assert spark_count(again) == 10
    w.clusters.permanent_delete(c.cluster_id)
    assert not pid_alive(again.spark_context_id)
    with pytest.raises(errors.ResourceDoesNotExist):
        w.clusters.get(c.cluster_id)
    assert c.cluster_id not in [x.cluster_id for x in w.clusters.list()]


def test_list_pages_and_filters(tarn, w):
    ids = []
    for i in range(5):
        ids.append(w.clusters.create(cluster_name=f"page-{i}", spark_version=SPARK_VERSION).cluster_id)
    for cid in ids:
        w.clusters.delete(cid)
    for cid in ids:
        w.clusters.wait_get_cluster_terminated(cid, timeout=WAIT)
    first = tarn.raw("GET", "/api/2.1/clusters/list", params={"page_size": 2}).json()
    assert len(first["clusters"]) == 2 and first["next_page_token"]
    seen = [c.cluster_id for c in w.clusters.list(page_size=2)]
    assert len(seen) == len(set(seen)) and set(ids) <= set(seen)
    terminated = [c.cluster_id for c in w.clusters.list(filter_by=ListClustersFilterBy(cluster_states=[State.TERMINATED]))]
    assert set(ids) <= set(terminated)
    running = list(w.clusters.list(filter_by=ListClustersFilterBy(cluster_states=[State.RUNNING])))
    assert all(c.state == State.RUNNING for c in running)
    for cid in ids:
        w.clusters.permanent_delete(cid)


def test_events_page_through_the_sdk(w, running):
    everything = [e.timestamp for e in w.clusters.events(running.cluster_id, order=GetEventsOrder.ASC, limit=500)]
    paged = [e.timestamp for e in w.clusters.events(running.cluster_id, order=GetEventsOrder.ASC, limit=2)]
    assert len(everything) >= 4 and paged == everything
    newest_first = [e.timestamp for e in w.clusters.events(running.cluster_id, order=GetEventsOrder.DESC, limit=3)]
    assert newest_first == sorted(everything, reverse=True)


def test_bad_input_gets_sdk_exceptions_and_changes_nothing(w):
    before = [(c.cluster_id, c.state) for c in w.clusters.list()]
    with pytest.raises(errors.ResourceDoesNotExist):
        w.clusters.get("0000-000000-nosuchid")
    with pytest.raises(errors.InvalidParameterValue):
        w.clusters.start("0000-000000-nosuchid")
    with pytest.raises(errors.InvalidParameterValue):
        w.clusters.create(spark_version=SPARK_VERSION, num_workers=-1)
    with pytest.raises(errors.InvalidParameterValue):
        w.clusters.create(spark_version=SPARK_VERSION, autotermination_minutes=3)
    with pytest.raises(errors.InvalidParameterValue):
        w.api_client.do("POST", "/api/2.1/clusters/create", body={"cluster_name": "no version"})
    assert [(c.cluster_id, c.state) for c in w.clusters.list()] == before


def test_catalog_of_versions_and_node_types(w):
    versions = w.clusters.spark_versions().versions
    assert versions and "LTS" in versions[0].name
    node_types = w.clusters.list_node_types().node_types
    assert node_types[0].node_type_id == "local-1c" and node_types[-1].num_cores >= 1
    assert w.clusters.select_spark_version(latest=True, long_term_support=True)


def test_engine_death_is_noticed(w):
    import os
    import signal

    c = w.clusters.create_and_wait(cluster_name="doomed", spark_version=SPARK_VERSION, timeout=WAIT)
    os.kill(c.spark_context_id, signal.SIGKILL)
    dead = w.clusters.wait_get_cluster_terminated(c.cluster_id, timeout=WAIT)
    assert dead.termination_reason.code.value == "DRIVER_UNEXPECTED_FAILURE"
    assert "exited unexpectedly" in dead.termination_reason.parameters["databricks_error_message"]
    w.clusters.permanent_delete(c.cluster_id)


def test_a_cluster_on_the_sail_cluster_backend(tarn, w):
    """`tarn_backend: sail-cluster`: Sail's distributed mode (a driver and
    `num_workers` workers, here in one process) runs the cluster's work."""
    with pytest.raises(errors.InvalidParameterValue, match="tarn_backend"):
        w.clusters.create(cluster_name="odd", spark_version=SPARK_VERSION, num_workers=1,
                          custom_tags={"tarn_backend": "flink"})
    cluster = w.clusters.create_and_wait(cluster_name="distributed", spark_version=SPARK_VERSION, num_workers=2,
                                         custom_tags={"tarn_backend": "sail-cluster"}, timeout=WAIT)
    try:
        spark = tarn.spark(cluster)
        assert spark.range(1_000_000).selectExpr("sum(id) AS s").first().s == 499_999_500_000
        counts = spark.sql("SELECT id % 3 AS k, count(*) AS c FROM range(100) GROUP BY 1 ORDER BY 1").collect()
        assert [(r.k, r.c) for r in counts] == [(0, 34), (1, 33), (2, 33)]
        spark.range(10).write.saveAsTable("main.default.on_sail_cluster")
        assert spark.table("main.default.on_sail_cluster").count() == 10
        log = (tarn.home / "logs" / "clusters" / cluster.cluster_id / "engine.log").read_text()
        assert "starting worker 2" in log
    finally:
        w.clusters.permanent_delete(cluster.cluster_id)
