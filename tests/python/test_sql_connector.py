"""The SQL warehouse through databricks-sql-connector's default (Thrift)
backend, SQLAlchemy and pandas on top of it, and the statement API's SQL
sessions: what dbt, BI tools and notebooks outside Databricks use."""

import datetime
import threading
import time
import uuid

import pytest
import requests
from databricks.sdk.service.compute import State as ClusterState
from databricks.sdk.service.sql import State
from databricks import sql
from databricks.sql.exc import DatabaseError, Error, ServerOperationError
from databricks.sql.thrift_api.TCLIService import TCLIService, ttypes
from thrift.protocol import TBinaryProtocol
from thrift.transport import THttpClient

from conftest import own_server, wait_for


@pytest.fixture(scope="module")
def server():
    yield from own_server("tarn-sqlconn-")


@pytest.fixture(scope="module")
def warehouse(server):
    return next(iter(server.client().warehouses.list())).id


def http_path(warehouse_id: str) -> str:
    return f"/sql/1.0/warehouses/{warehouse_id}"


def connect(server, warehouse_id, token=None, **kw):
    """The connector on tarn's plain-HTTP port: `_connection_uri` is the
    connector's own switch for that (test_tls.py covers HTTPS)."""
    return connect_path(server, http_path(warehouse_id), token, **kw)


def connect_path(server, path, token=None, **kw):
    return sql.connect(server_hostname="127.0.0.1", http_path=path, access_token=token or server.token,
                       _connection_uri=server.url + path, _retry_stop_after_attempts_count=2, **kw)


def raw_client(server, warehouse_id, token=None):
    transport = THttpClient.THttpClient(server.url + http_path(warehouse_id))
    transport.setCustomHeaders({"Authorization": f"Bearer {token or server.token}"})
    return TCLIService.Client(TBinaryProtocol.TBinaryProtocol(transport))


def test_statements_parameters_and_session_state(server, warehouse):
    schema = f"conn_{uuid.uuid4().hex[:8]}"
    with connect(server, warehouse) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 AS one, 'x' AS s, CAST(2.5 AS DOUBLE) AS d")
        assert cur.fetchall() == [(1, "x", 2.5)]
        assert [(c[0], c[1]) for c in cur.description] == [("one", "int"), ("s", "string"), ("d", "double")]
        cur.execute("SELECT :n + 1 AS n, :s AS s", {"n": 41, "s": "named"})
        assert cur.fetchone() == (42, "named")
        cur.execute("SELECT ? * 2 AS p", [21])
        assert cur.fetchone()[0] == 42
        # One engine session per connection: USE and temporary views persist.
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS main.{schema}")
        cur.execute(f"USE {schema}")
        cur.execute("SELECT current_catalog(), current_schema()")
        assert cur.fetchone() == ("main", schema)
        cur.execute("CREATE OR REPLACE TEMPORARY VIEW answer AS SELECT 42 AS x")
        cur.execute("SELECT x FROM answer")
        assert cur.fetchone()[0] == 42
        cur.execute("CREATE TABLE people (id INT, name STRING) USING delta")
        cur.execute("INSERT INTO people VALUES (1, 'ada'), (2, NULL)")
        cur.execute("SELECT id, name FROM people ORDER BY id")
        assert cur.fetchall() == [(1, "ada"), (2, None)]
    # Another connection starts in its own session, with its own namespace.
    with connect(server, warehouse, catalog="main", schema=schema) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM people")
        assert cur.fetchone()[0] == 2
        with pytest.raises(ServerOperationError):
            cur.execute("SELECT x FROM answer")


def test_large_results_as_arrow_rows_and_columns(server, warehouse):
    query = "SELECT id, id * 2 AS twice, CAST(id AS STRING) AS s FROM range(100000) ORDER BY id"
    with connect(server, warehouse) as conn, conn.cursor() as cur:
        cur.execute(query)
        table = cur.fetchall_arrow()
        assert table.num_rows == 100_000
        assert table.column("twice").to_pylist()[-1] == 199_998
        cur.execute(query)
        first = cur.fetchmany(1000)
        rest = cur.fetchall()
        assert len(first) + len(rest) == 100_000
        assert rest[-1] == (99_999, 199_998, "99999")
    # A client without Arrow gets the column-based set, nulls marked.
    client = raw_client(server, warehouse)
    opened = client.OpenSession(ttypes.TOpenSessionReq(
        client_protocol_i64=ttypes.TProtocolVersion.SPARK_CLI_SERVICE_PROTOCOL_V7))
    handle = opened.sessionHandle
    executed = client.ExecuteStatement(ttypes.TExecuteStatementReq(
        sessionHandle=handle, runAsync=True, canReadArrowResult=False,
        statement="SELECT id, IF(id % 2 = 0, NULL, CAST(id AS STRING)) AS s FROM range(2500)",
        getDirectResults=ttypes.TSparkGetDirectResults(maxRows=1000)))
    direct = executed.directResults
    assert direct.resultSetMetadata.resultFormat == ttypes.TSparkRowSetType.COLUMN_BASED_SET
    ids, strings = direct.resultSet.results.columns
    assert ids.i64Val.values[:3] == [0, 1, 2] and len(ids.i64Val.values) == 1000
    assert strings.stringVal.values[1] == "1" and strings.stringVal.nulls[0] & 1 == 1
    assert direct.resultSet.hasMoreRows and direct.closeOperation is None
    seen = 1000
    while True:
        page = client.FetchResults(ttypes.TFetchResultsReq(
            operationHandle=executed.operationHandle, maxRows=1000,
            orientation=ttypes.TFetchOrientation.FETCH_NEXT))
        assert page.results.startRowOffset == seen
        seen += len(page.results.columns[0].i64Val.values)
        if not page.hasMoreRows:
            break
    assert seen == 2500
    client.CloseOperation(ttypes.TCloseOperationReq(operationHandle=executed.operationHandle))
    client.CloseSession(ttypes.TCloseSessionReq(sessionHandle=handle))


def test_metadata_calls_show_what_the_caller_may_see(server, warehouse):
    schema = f"meta_{uuid.uuid4().hex[:8]}"
    with connect(server, warehouse) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA main.{schema}")
        cur.execute(f"CREATE TABLE main.{schema}.orders (id BIGINT NOT NULL, amount DOUBLE, note STRING) USING delta")
        assert {r.TABLE_CAT for r in cur.catalogs().fetchall()} >= {"main", "system"}
        schemas = cur.schemas(catalog_name="main", schema_name="meta_%").fetchall()
        assert (schema, "main") in [(r.TABLE_SCHEM, r.TABLE_CATALOG) for r in schemas]
        tables = cur.tables(catalog_name="main", schema_name=schema, table_name="ord*").fetchall()
        assert [(t.TABLE_NAME, t.TABLE_TYPE) for t in tables] == [("orders", "TABLE")]
        columns = cur.columns(catalog_name="main", schema_name=schema, table_name="orders").fetchall()
        assert [(c.COLUMN_NAME, c.TYPE_NAME, c.DATA_TYPE, c.ORDINAL_POSITION) for c in columns] == [
            ("id", "BIGINT", -5, 1), ("amount", "DOUBLE", 8, 2), ("note", "STRING", 12, 3)]
        assert columns[0].IS_NULLABLE == "NO"
        assert cur.columns(catalog_name="main", schema_name=schema, table_name="orders",
                           column_name="am%").fetchall()[0].COLUMN_NAME == "amount"
    # A user with the warehouse but no grants sees no schema or table of it.
    w = server.client()
    user = f"meta-{uuid.uuid4().hex[:6]}@example.com"
    w.users.create(user_name=user)
    token = server.cli_token(user)
    w.api_client.do("PATCH", f"/api/2.0/permissions/warehouses/{warehouse}",
                    body={"access_control_list": [{"user_name": user, "permission_level": "CAN_USE"}]})
    with connect(server, warehouse, token=token) as conn, conn.cursor() as cur:
        assert cur.tables(catalog_name="main", schema_name=schema).fetchall() == []
        assert schema not in [r.TABLE_SCHEM for r in cur.schemas(catalog_name="main").fetchall()]


def test_errors_carry_their_sqlstate(server, warehouse):
    with connect(server, warehouse) as conn, conn.cursor() as cur:
        with pytest.raises(ServerOperationError) as missing:
            cur.execute("SELECT * FROM main.default.no_such_table")
        assert "SQLSTATE: 42P01" in str(missing.value)
        assert "no_such_table" in str(missing.value)
        # The connection stays usable after a failed statement.
        cur.execute("SELECT 2")
        assert cur.fetchone()[0] == 2


def test_cancel_interrupts_a_long_query(server, warehouse):
    with connect(server, warehouse) as conn, conn.cursor() as cur:
        def cancel_soon():
            # The connector can cancel once ExecuteStatement has answered.
            deadline = time.time() + 30
            while cur.active_command_id is None and time.time() < deadline:
                time.sleep(0.2)
            time.sleep(1)
            cur.cancel()

        canceller = threading.Thread(target=cancel_soon)
        canceller.start()
        started = time.time()
        with pytest.raises(Error):
            cur.execute("SELECT count(*) FROM range(300000) a CROSS JOIN range(300000) b WHERE a.id + b.id = 7")
            cur.fetchall()
        canceller.join()
        # The same session runs the next statement (the engine was interrupted).
        cur.execute("SELECT 3")
        assert cur.fetchone()[0] == 3
        assert time.time() - started < 60


def test_bad_input_gets_errors_not_retries(server, warehouse):
    # An unknown warehouse: 404 at once, which the connector does not retry.
    started = time.time()
    with pytest.raises(Error) as unknown:
        connect(server, "0123456789abcdef")
    assert time.time() - started < 20
    assert "does not exist" in str(unknown.value) or "404" in str(unknown.value)
    # A body that is not Thrift.
    path = http_path(warehouse)
    garbage = requests.post(server.url + path, data=b"\x00\x01not thrift", timeout=10,
                            headers={"Authorization": f"Bearer {server.token}"})
    assert garbage.status_code == 400 and "x-thriftserver-error-message" in garbage.headers
    # No token, or the `token:<pat>` basic form the drivers also use.
    assert requests.post(server.url + path, data=b"", timeout=10).status_code == 401
    basic = requests.post(server.url + path, data=b"\x00", timeout=10, auth=("token", server.token))
    assert basic.status_code == 400
    # A revoked token is refused on the next call.
    w = server.client()
    created = w.tokens.create(comment="conn", lifetime_seconds=3600)
    conn = connect(server, warehouse, token=created.token_value)
    cur = conn.cursor()
    cur.execute("SELECT 1")
    w.tokens.delete(created.token_info.token_id)
    with pytest.raises(Error):
        cur.execute("SELECT 1")
    conn.close()  # refused as well; the connector logs that and lets go
    # A session closed on the server side is reported, not hung on.
    with connect(server, warehouse) as conn, conn.cursor() as cur:
        client = raw_client(server, warehouse)
        client.CloseSession(ttypes.TCloseSessionReq(sessionHandle=conn.session._session_id.to_thrift_handle()))
        started = time.time()
        with pytest.raises(DatabaseError) as closed:
            cur.execute("SELECT 1")
        assert "Invalid SessionHandle" in str(closed.value) and time.time() - started < 20


def test_a_cluster_http_path_runs_on_the_cluster(server, warehouse):
    w = server.client()
    cluster = w.clusters.create_and_wait(cluster_name="thrift", spark_version="16.4.x-scala2.13", num_workers=0,
                                         timeout=datetime.timedelta(minutes=3))
    path = f"/sql/protocolv1/o/0/{cluster.cluster_id}"
    try:
        w.warehouses.stop(warehouse)
        wait_for(lambda: w.warehouses.get(warehouse).state == State.STOPPED, timeout=60)
        with connect_path(server, path) as conn, conn.cursor() as cur:
            cur.execute("SELECT 40 + 2 AS answer")
            assert cur.fetchone()[0] == 42
            cur.execute("CREATE OR REPLACE TEMPORARY VIEW one AS SELECT 1 AS x")
            cur.execute("SELECT x FROM one")
            assert cur.fetchone()[0] == 1
        # The cluster ran it: the warehouse stayed stopped.
        assert w.warehouses.get(warehouse).state == State.STOPPED
        # A terminated cluster starts for the first statement, as Databricks starts it.
        w.clusters.delete_and_wait(cluster.cluster_id)
        with connect_path(server, path) as conn, conn.cursor() as cur:
            cur.execute("SELECT 7")
            assert cur.fetchone()[0] == 7
        assert w.clusters.get(cluster.cluster_id).state == ClusterState.RUNNING
        # An unknown cluster: 404 at once, not retried.
        started = time.time()
        with pytest.raises(Error):
            connect_path(server, "/sql/protocolv1/o/0/0123-456789-nothere")
        assert time.time() - started < 20
    finally:
        w.clusters.permanent_delete(cluster.cluster_id)


def test_sqlalchemy_and_pandas(server, warehouse):
    pd = pytest.importorskip("pandas")
    from sqlalchemy import create_engine, inspect, text

    schema = f"sa_{uuid.uuid4().hex[:8]}"
    with connect(server, warehouse) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA main.{schema}")
    path = http_path(warehouse)
    engine = create_engine(
        f"databricks://token:{server.token}@127.0.0.1?http_path={path}&catalog=main&schema={schema}",
        connect_args={"_connection_uri": server.url + path})
    frame = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None]})
    frame.to_sql("people", engine, if_exists="replace", index=False)
    back = pd.read_sql("SELECT id, name FROM people ORDER BY id", engine)
    assert back["id"].tolist() == [1, 2, 3] and back["name"].tolist()[:2] == ["a", "b"]
    assert "people" in inspect(engine).get_table_names()
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM people WHERE id > :m"), {"m": 1}).scalar() == 2
    engine.dispose()


def test_statement_api_sessions(server, warehouse):
    w = server.client()
    schema = f"sess_{uuid.uuid4().hex[:8]}"

    def run(statement, session_id=None):
        body = {"warehouse_id": warehouse, "statement": statement, "wait_timeout": "30s"}
        if session_id:
            body["session_id"] = session_id
        return w.api_client.do("POST", "/api/2.0/sql/statements", body=body)

    created = w.api_client.do("POST", "/api/2.0/sql/sessions",
                              body={"warehouse_id": warehouse, "catalog": "main"})
    session = created["session_id"]
    assert run(f"CREATE SCHEMA main.{schema}", session)["status"]["state"] == "SUCCEEDED"
    assert run(f"USE SCHEMA {schema}", session)["status"]["state"] == "SUCCEEDED"
    assert run("CREATE OR REPLACE TEMPORARY VIEW v AS SELECT 5 AS five", session)["status"]["state"] == "SUCCEEDED"
    answer = run("SELECT current_schema(), five FROM v", session)
    assert answer["result"]["data_array"] == [[schema, "5"]]
    assert w.api_client.do("GET", f"/api/2.0/sql/sessions/{session}")["schema"] == schema
    # Without the session a statement starts from the defaults.
    assert run("SELECT current_schema()")["result"]["data_array"] == [["default"]]
    w.api_client.do("DELETE", f"/api/2.0/sql/sessions/{session}")
    with pytest.raises(Exception) as gone:
        run("SELECT 1", session)
    assert "RESOURCE_DOES_NOT_EXIST" in str(gone.value) or "does not exist" in str(gone.value)
