"""The SQL Statement Execution API and the local SQL warehouse, through
databricks-sdk's `w.statement_execution` and `w.warehouses`."""

import time

import pytest
from databricks.sdk import errors
from databricks.sdk.service.sql import (
    Disposition,
    ExecuteStatementRequestOnWaitTimeout,
    State,
    StatementParameterListItem,
    StatementState,
)

from conftest import Tarn, wait_for

# Long enough to outlast any wait in these tests; stopped by cancel.
ENDLESS = "SELECT sum(hash(id)) FROM range(100000000000)"


def sql(w, warehouse_id, statement, **kw):
    kw.setdefault("wait_timeout", "50s")
    return w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse_id, **kw)


def ok(response):
    assert response.status.state == StatementState.SUCCEEDED, response.status
    return response


@pytest.fixture(scope="module")
def warehouse_id(w):
    (warehouse,) = list(w.warehouses.list())
    return warehouse.id


def test_queries_types_parameters_and_limits(w, warehouse_id):
    r = ok(sql(w, warehouse_id, "SELECT 1 AS a, 'x' AS b, DATE'2024-02-29' AS d, CAST(1.25 AS DECIMAL(5,2)) AS m"))
    columns = [(c.name, c.type_text, c.type_name.value) for c in r.manifest.schema.columns]
    assert columns == [("a", "INT", "INT"), ("b", "STRING", "STRING"), ("d", "DATE", "DATE"),
                       ("m", "DECIMAL(5,2)", "DECIMAL")]
    assert r.result.data_array == [["1", "x", "2024-02-29", "1.25"]]
    assert w.warehouses.get(warehouse_id).state == State.RUNNING

    nested = ok(sql(w, warehouse_id, "SELECT array(1, 2) AS a, named_struct('x', 1, 'y', 'z') AS s, NULL AS n"))
    assert nested.result.data_array == [["[1,2]", '{"x":1,"y":"z"}', None]]

    params = [StatementParameterListItem(name="lo", value="6", type="INT"),
              StatementParameterListItem(name="tag", value="it's")]
    r = ok(sql(w, warehouse_id, "SELECT id, :tag AS tag FROM range(10) WHERE id > :lo ORDER BY id", parameters=params))
    assert r.result.data_array == [["7", "it's"], ["8", "it's"], ["9", "it's"]]

    limited = ok(sql(w, warehouse_id, "SELECT id FROM range(1000)", row_limit=3))
    assert limited.manifest.truncated and limited.manifest.total_row_count == 3
    assert limited.result.data_array == [["0"], ["1"], ["2"]]


def test_large_results_come_in_chunks(w, warehouse_id):
    r = ok(sql(w, warehouse_id, "SELECT id, id * 2 AS twice FROM range(300000) ORDER BY id"))
    manifest = r.manifest
    assert manifest.total_row_count == 300000 and manifest.total_chunk_count > 1
    assert sum(c.row_count for c in manifest.chunks) == 300000
    rows, chunk = [], r.result
    while True:
        rows.extend(chunk.data_array)
        if chunk.next_chunk_index is None:
            break
        assert chunk.next_chunk_internal_link.endswith(f"/result/chunks/{chunk.next_chunk_index}")
        chunk = w.statement_execution.get_statement_result_chunk_n(r.statement_id, chunk.next_chunk_index)
    assert len(rows) == 300000 and rows[123456] == ["123456", "246912"]
    with pytest.raises(errors.InvalidParameterValue):
        w.statement_execution.get_statement_result_chunk_n(r.statement_id, manifest.total_chunk_count)


def test_sql_errors_fail_the_statement(w, warehouse_id):
    missing = sql(w, warehouse_id, "SELECT * FROM main.default.no_such_table")
    assert missing.status.state == StatementState.FAILED
    assert missing.status.error.error_code.value == "BAD_REQUEST"
    assert "no_such_table" in missing.status.error.message
    malformed = sql(w, warehouse_id, "SELEC 1")
    assert malformed.status.state == StatementState.FAILED and "SELEC" in malformed.status.error.message
    lake_malformed = sql(w, warehouse_id, "VACUUM main.default.t RETAIN soon")
    assert lake_malformed.status.state == StatementState.FAILED
    assert lake_malformed.status.sql_state == "42601"


def test_bad_requests_are_refused(w, warehouse_id):
    with pytest.raises(errors.InvalidParameterValue):
        sql(w, warehouse_id, "SELECT 1", wait_timeout="3s")
    with pytest.raises(errors.NotFound):
        sql(w, "0123456789abcdef", "SELECT 1")
    with pytest.raises(errors.NotImplemented):
        sql(w, warehouse_id, "SELECT 1", disposition=Disposition.EXTERNAL_LINKS)
    with pytest.raises(errors.NotFound):
        w.statement_execution.get_statement("no-such-statement")
    with pytest.raises(errors.NotImplemented):
        w.warehouses.create(name="another")


def test_async_statements_and_cancel(w, warehouse_id):
    quick = sql(w, warehouse_id, "SELECT 42 AS answer", wait_timeout="0s")
    assert quick.status.state in (StatementState.PENDING, StatementState.RUNNING, StatementState.SUCCEEDED)
    done = wait_for(lambda: (s := w.statement_execution.get_statement(quick.statement_id)).status.state
                    == StatementState.SUCCEEDED and s)
    assert done.result.data_array == [["42"]]

    endless = sql(w, warehouse_id, ENDLESS, wait_timeout="0s")
    wait_for(lambda: w.statement_execution.get_statement(endless.statement_id).status.state == StatementState.RUNNING)
    w.statement_execution.cancel_execution(endless.statement_id)
    assert w.statement_execution.get_statement(endless.statement_id).status.state == StatementState.CANCELED

    started = time.time()
    timed_out = sql(w, warehouse_id, ENDLESS, wait_timeout="5s",
                    on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CANCEL)
    assert timed_out.status.state == StatementState.CANCELED and time.time() - started < 20
    # The engine stopped the canceled work: the next statement is answered.
    assert ok(sql(w, warehouse_id, "SELECT 1")).result.data_array == [["1"]]

    # Closing a statement (what SQL connectors do when done) cancels it and lets its result go.
    closing = sql(w, warehouse_id, ENDLESS, wait_timeout="0s")
    w.api_client.do("DELETE", f"/api/2.0/sql/statements/{closing.statement_id}")
    with pytest.raises(errors.NotFound):
        w.statement_execution.get_statement(closing.statement_id)
    assert ok(sql(w, warehouse_id, "SELECT 2")).result.data_array == [["2"]]


def test_lake_statements_and_namespace(w, warehouse_id):
    ok(sql(w, warehouse_id, "CREATE TABLE main.default.stmt_events (id BIGINT, kind STRING) USING DELTA"))
    ok(sql(w, warehouse_id, "INSERT INTO main.default.stmt_events VALUES (1, 'a'), (2, 'b')"))
    rows = ok(sql(w, warehouse_id, "SELECT * FROM stmt_events ORDER BY id", catalog="main", schema="default"))
    assert rows.result.data_array == [["1", "a"], ["2", "b"]]
    ok(sql(w, warehouse_id, "CREATE TABLE main.default.stmt_copy AS SELECT kind, count(*) AS n FROM stmt_events "
                            "GROUP BY kind", catalog="main", schema="default"))
    copy = ok(sql(w, warehouse_id, "SELECT * FROM main.default.stmt_copy ORDER BY kind"))
    assert copy.result.data_array == [["a", "1"], ["b", "1"]]
    history = ok(sql(w, warehouse_id, "DESCRIBE HISTORY stmt_events", catalog="main", schema="default"))
    names = [c.name for c in history.manifest.schema.columns]
    versions = [row[names.index("version")] for row in history.result.data_array]
    assert versions == ["1", "0"]


def test_warehouse_lifecycle(tmp_home):
    tarn = Tarn(tmp_home).start()
    try:
        w = tarn.client()
        (warehouse,) = list(w.warehouses.list())
        assert warehouse.state == State.STOPPED and warehouse.auto_stop_mins == 10
        assert w.warehouses.start(warehouse.id).result().state == State.RUNNING
        # The warehouse's engine is not one of the user's clusters.
        assert list(w.clusters.list()) == []
        assert w.warehouses.stop(warehouse.id).result().state == State.STOPPED
        # A statement starts it again on demand.
        assert ok(sql(w, warehouse.id, "SELECT 2")).result.data_array == [["2"]]
        assert w.warehouses.get(warehouse.id).state == State.RUNNING
        tarn.stop()
        tarn = Tarn(tmp_home).start()
        w = tarn.client()
        # The id is kept; the engine did not survive tarn's stop.
        assert w.warehouses.get(warehouse.id).state == State.STOPPED
    finally:
        tarn.stop()


def test_warehouse_auto_stops_when_idle(tmp_home):
    tarn = Tarn(tmp_home, {"TARN_TEST_MINUTE_MS": "100"}).start()
    try:
        w = tarn.client()
        (warehouse,) = list(w.warehouses.list())
        ok(sql(w, warehouse.id, "SELECT 1"))
        # auto_stop_mins is 10 test "minutes" of 100 ms each.
        wait_for(lambda: w.warehouses.get(warehouse.id).state == State.STOPPED, timeout=60)
    finally:
        tarn.stop()


def test_system_tables(w, warehouse_id):
    cluster_id = w.clusters.create(cluster_name="audited", spark_version="16.4.x-scala2.13", num_workers=0,
                                   autotermination_minutes=30).cluster_id
    try:
        with pytest.raises(errors.ResourceDoesNotExist):
            w.clusters.get("no-such-cluster")
        clusters = ok(sql(w, warehouse_id, "SELECT cluster_name, owned_by, auto_termination_minutes, cluster_source "
                                          f"FROM system.compute.clusters WHERE cluster_id = '{cluster_id}'"))
        assert clusters.result.data_array == [["audited", "admin", "30", "API"]]
        # The warehouse's own engine is not a cluster of the workspace.
        names = ok(sql(w, warehouse_id, "SELECT cluster_name FROM system.compute.clusters"))
        assert ["Local SQL warehouse"] not in names.result.data_array

        audit = ok(sql(w, warehouse_id, "SELECT user_identity.email, request_params['method'], response.status_code "
                                        "FROM system.access.audit WHERE service_name = 'clusters' "
                                        "AND action_name = 'get' ORDER BY event_time DESC LIMIT 1"))
        assert audit.result.data_array == [["admin", "GET", "400"]]
        # Refreshed on each statement that names a system table: the call
        # that ran the previous statement is there now.
        latest = ok(sql(w, warehouse_id, "SELECT count(*) FROM system.access.audit WHERE service_name = 'sql'"))
        assert int(latest.result.data_array[0][0]) >= 3
        # Every column reads, maps and structs included.
        ok(sql(w, warehouse_id, "SELECT * FROM system.access.audit LIMIT 5"))
        ok(sql(w, warehouse_id, "SELECT * FROM system.compute.clusters"))
        table = w.tables.get("system.access.audit")
        assert table.table_type.value == "EXTERNAL"
        assert {"event_time", "user_identity", "action_name"} <= {c.name for c in table.columns}
    finally:
        w.clusters.permanent_delete(cluster_id)


def test_each_statement_ends_its_engine_session(tmp_home):
    """A statement without `session_id` runs in an engine session of its
    own, which ends with it (an engine keeps a session's state until it is
    released, so one per statement would grow without bound)."""
    import re

    server = Tarn(tmp_home).start()
    try:
        w = server.client()
        warehouse = list(w.warehouses.list())[0].id
        for i in range(5):
            ok(sql(w, warehouse, f"SELECT {i} AS n"))
        logs = list((tmp_home / "logs" / "clusters").glob("*/engine.log"))

        def open_sessions():
            text = "".join(log.read_text() for log in logs)
            created = set(re.findall(r"creating session (\S+)", text))
            removed = set(re.findall(r"removing session (\S+)", text))
            return created, created - removed

        # The readiness probe's session is the one the engine may keep.
        created, left = wait_for(lambda: (lambda c, l: (c, l) if len(l) <= 1 else None)(*open_sessions()), timeout=30)
        assert len(created) >= 5, created
    finally:
        server.stop()
