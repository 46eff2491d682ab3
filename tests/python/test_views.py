"""Views kept in the catalog: tarn answers CREATE VIEW and DROP VIEW and
puts a view's query in its place before the engine sees a statement, since
Sail's Unity Catalog client neither creates nor reads views. Driven through
the Statement Execution API (databricks-sdk), a Spark Connect session
(pyspark) and databricks-sql-connector's Thrift backend; checked through the
catalog API."""

import datetime
import uuid

import pytest
from databricks.sdk import errors
from databricks.sdk.service.catalog import TableType
from databricks.sdk.service.sql import StatementState

WAIT = datetime.timedelta(minutes=3)


@pytest.fixture(scope="module")
def warehouse_id(w):
    (warehouse,) = list(w.warehouses.list())
    return warehouse.id


def run(w, warehouse_id, statement, schema="default"):
    r = w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse_id, catalog="main",
                                                schema=schema, wait_timeout="50s")
    return r


def rows(w, warehouse_id, statement, schema="default"):
    r = run(w, warehouse_id, statement, schema)
    assert r.status.state == StatementState.SUCCEEDED, r.status.error
    return [tuple(row) for row in (r.result.data_array or [])]


def refused(w, warehouse_id, statement, schema="default"):
    r = run(w, warehouse_id, statement, schema)
    assert r.status.state == StatementState.FAILED, statement
    return r.status.error.message


@pytest.fixture(scope="module")
def shop(w, warehouse_id):
    """Two schemas: `orders` in the first, views over it in both."""
    first, second = f"views_{uuid.uuid4().hex[:6]}", f"report_{uuid.uuid4().hex[:6]}"
    for schema in (first, second):
        rows(w, warehouse_id, f"CREATE SCHEMA main.{schema}")
    rows(w, warehouse_id, "CREATE TABLE orders (id BIGINT, customer STRING, amount DOUBLE) USING delta", first)
    rows(w, warehouse_id, "INSERT INTO orders VALUES (1, 'ada', 25.5), (2, 'ada', 5.0), (3, 'grace', 12.25)", first)
    return first, second


def test_a_view_reads_its_query_where_it_was_created(w, warehouse_id, shop):
    first, second = shop
    # Unqualified names in a view resolve in the schema it was created in.
    rows(w, warehouse_id, "CREATE VIEW big COMMENT 'Orders over 10' AS SELECT * FROM orders WHERE amount > 10", first)
    assert rows(w, warehouse_id, f"SELECT id FROM main.{first}.big ORDER BY id", second) == [("1",), ("3",)]
    # A view of a view, in another schema, with its columns named and commented.
    rows(w, warehouse_id, f"CREATE VIEW top (who COMMENT 'The customer', total) AS "
                          f"SELECT customer, sum(amount) FROM {first}.big GROUP BY customer", second)
    assert rows(w, warehouse_id, "SELECT who, total FROM top ORDER BY who", second) == [("ada", "25.5"),
                                                                                        ("grace", "12.25")]
    # Views read the data as it is now.
    rows(w, warehouse_id, "INSERT INTO orders VALUES (4, 'linus', 40.0)", first)
    assert rows(w, warehouse_id, f"SELECT count(*) FROM top t JOIN {first}.big b ON t.who = b.customer", second) == [("3",)]

    info = w.tables.get(f"main.{second}.top")
    assert info.table_type == TableType.VIEW
    assert info.view_definition == f"SELECT customer, sum(amount) FROM {first}.big GROUP BY customer"
    assert [(c.name, c.type_text, c.comment) for c in info.columns] == [
        ("who", "string", "The customer"), ("total", "double", None)]
    assert info.storage_location is None
    assert w.tables.get(f"main.{first}.big").comment == "Orders over 10"
    assert rows(w, warehouse_id, "SHOW VIEWS", first) == [(first, "big", "false")]
    assert rows(w, warehouse_id, f"SHOW VIEWS IN main.{second} LIKE 'x|t*'", first) == [(second, "top", "false")]
    assert rows(w, warehouse_id, f"SHOW VIEWS FROM {second} LIKE 'nothing*'", first) == []
    listed = {t.name: t.table_type for t in w.tables.list(catalog_name="main", schema_name=first)}
    assert listed == {"orders": TableType.MANAGED, "big": TableType.VIEW}
    described = rows(w, warehouse_id, "DESCRIBE TABLE top", second)
    assert [d[:2] for d in described[:2]] == [("who", "string"), ("total", "double")]
    properties = dict(rows(w, warehouse_id, "SHOW TBLPROPERTIES top", second))
    assert properties["view.catalogAndNamespace.part.1"] == second

    # A table made from a view holds the view's rows.
    rows(w, warehouse_id, "CREATE TABLE totals AS SELECT * FROM top", second)
    assert rows(w, warehouse_id, "SELECT count(*) FROM totals", second) == [("3",)]


def test_replacing_and_dropping_views(w, warehouse_id, shop):
    first, _ = shop
    rows(w, warehouse_id, "CREATE VIEW cheap AS SELECT id FROM orders WHERE amount < 10", first)
    created = w.tables.get(f"main.{first}.cheap")
    rows(w, warehouse_id, "CREATE OR REPLACE VIEW cheap AS SELECT id, amount FROM orders WHERE amount < 20", first)
    assert rows(w, warehouse_id, "SELECT id FROM cheap ORDER BY id", first) == [("2",), ("3",)]
    replaced = w.tables.get(f"main.{first}.cheap")
    assert (replaced.table_id, replaced.owner) == (created.table_id, created.owner)
    assert [c.name for c in replaced.columns] == ["id", "amount"]

    # ALTER VIEW changes the query or the properties, and keeps the rest.
    rows(w, warehouse_id, "ALTER VIEW cheap SET TBLPROPERTIES ('team' = 'sales')", first)
    rows(w, warehouse_id, "ALTER VIEW cheap AS SELECT id, amount FROM orders WHERE amount < 6", first)
    assert rows(w, warehouse_id, "SELECT id FROM cheap", first) == [("2",)]
    assert dict(rows(w, warehouse_id, "SHOW TBLPROPERTIES cheap", first))["team"] == "sales"
    assert "TABLE_OR_VIEW_NOT_FOUND" in refused(w, warehouse_id, "ALTER VIEW nowhere AS SELECT 1", first)
    assert "EXPECT_VIEW_NOT_TABLE" in refused(w, warehouse_id, "ALTER VIEW orders SET TBLPROPERTIES ('a'='b')", first)
    rows(w, warehouse_id, "ALTER VIEW cheap AS SELECT id, amount FROM orders WHERE amount < 20", first)

    assert "TABLE_OR_VIEW_ALREADY_EXISTS" in refused(w, warehouse_id, "CREATE VIEW cheap AS SELECT 1", first)
    rows(w, warehouse_id, "CREATE VIEW IF NOT EXISTS cheap AS SELECT 1 AS one", first)
    assert [c.name for c in w.tables.get(f"main.{first}.cheap").columns] == ["id", "amount"]

    # A query the engine refuses makes no view.
    assert "TABLE_OR_VIEW_NOT_FOUND" in refused(w, warehouse_id, "CREATE VIEW broken AS SELECT * FROM nowhere", first)
    with pytest.raises(errors.NotFound):
        w.tables.get(f"main.{first}.broken")
    # Tables are not views, and stay as they were.
    assert "EXPECT_VIEW_NOT_TABLE" in refused(w, warehouse_id, "CREATE OR REPLACE VIEW orders AS SELECT 1", first)
    assert "WRONG_COMMAND_FOR_OBJECT_TYPE" in refused(w, warehouse_id, "DROP VIEW orders", first)
    assert "EXPECT_TABLE_NOT_VIEW" in refused(w, warehouse_id, "DESCRIBE HISTORY cheap", first)
    assert rows(w, warehouse_id, "SELECT count(*) FROM orders", first) == [("4",)]
    assert "CREATE_VIEW_COLUMN_ARITY_MISMATCH" in refused(
        w, warehouse_id, "CREATE VIEW pair (a) AS SELECT id, amount FROM orders", first)

    rows(w, warehouse_id, "DROP VIEW cheap", first)
    with pytest.raises(errors.NotFound):
        w.tables.get(f"main.{first}.cheap")
    rows(w, warehouse_id, "DROP VIEW IF EXISTS cheap", first)
    assert "TABLE_OR_VIEW_NOT_FOUND" in refused(w, warehouse_id, "DROP VIEW cheap", first)
    assert "TABLE_OR_VIEW_NOT_FOUND" in refused(w, warehouse_id, "SELECT * FROM cheap", first)
    # A view may not read itself, through other views or not.
    rows(w, warehouse_id, "CREATE VIEW one AS SELECT id FROM orders", first)
    rows(w, warehouse_id, "CREATE VIEW two AS SELECT id FROM one", first)
    assert "RECURSIVE_VIEW" in refused(w, warehouse_id, "CREATE OR REPLACE VIEW one AS SELECT id FROM two", first)
    assert rows(w, warehouse_id, "SELECT count(*) FROM two", first) == [("4",)]


def test_views_in_a_spark_session(tarn, w, shop):
    first, _ = shop
    cluster = w.clusters.create_and_wait(cluster_name="views", spark_version="16.4.x-scala2.13", num_workers=0,
                                         timeout=WAIT)
    try:
        spark = tarn.spark(cluster)
        spark.sql(f"CREATE OR REPLACE VIEW main.{first}.doubled AS SELECT id, amount * 2 AS twice "
                  f"FROM main.{first}.orders")
        assert w.tables.get(f"main.{first}.doubled").table_type == TableType.VIEW
        assert spark.table(f"main.{first}.doubled").where("twice > 30").count() == 2
        spark.sql(f"USE SCHEMA main.{first}")
        assert spark.sql("SELECT max(twice) AS m FROM doubled").first().m == 80.0
        assert spark.read.table("doubled").columns == ["id", "twice"]
        # Temporary views stay the engine's.
        spark.sql("CREATE TEMPORARY VIEW scratch AS SELECT 7 AS n")
        assert spark.table("scratch").first().n == 7
        with pytest.raises(errors.NotFound):
            w.tables.get(f"main.{first}.scratch")
        spark.sql("DROP VIEW doubled")
        with pytest.raises(errors.NotFound):
            w.tables.get(f"main.{first}.doubled")
    finally:
        w.clusters.permanent_delete(cluster.cluster_id)


def test_drivers_see_views_as_views(tarn, warehouse_id, shop, w):
    from databricks import sql

    first, _ = shop
    rows(w, warehouse_id, "CREATE VIEW IF NOT EXISTS big AS SELECT * FROM orders WHERE amount > 10", first)
    path = f"/sql/1.0/warehouses/{warehouse_id}"
    with sql.connect(server_hostname="127.0.0.1", http_path=path, access_token=tarn.token,
                     _connection_uri=tarn.url + path, _retry_stop_after_attempts_count=2) as conn:
        with conn.cursor() as cur:
            cur.tables(catalog_name="main", schema_name=first)
            kinds = {r.TABLE_NAME: r.TABLE_TYPE for r in cur.fetchall()}
            assert kinds["big"] == "VIEW" and kinds["orders"] == "TABLE"
            cur.execute(f"SELECT count(*) FROM main.{first}.big")
            assert cur.fetchone()[0] >= 2


def test_a_view_is_read_with_its_own_rights(tarn, w, warehouse_id, shop):
    from databricks.sdk.service import catalog

    first, _ = shop
    rows(w, warehouse_id, "CREATE VIEW IF NOT EXISTS big AS SELECT * FROM orders WHERE amount > 10", first)
    reader = tarn.client(tarn.cli_token("view-reader@example.com"))

    def grant(securable, name, *privileges):
        change = catalog.PermissionsChange(principal="view-reader@example.com", add=list(privileges))
        w.grants.update(securable, name, changes=[change])

    grant("schema", f"main.{first}", catalog.Privilege.USE_SCHEMA)
    assert "SELECT on Table" in refused(reader, warehouse_id, "SELECT count(*) FROM big", first)
    # SELECT on the view alone: its rows, not the table's.
    grant("table", f"main.{first}.big", catalog.Privilege.SELECT)
    assert rows(reader, warehouse_id, "SELECT count(*) FROM big", first) == [("3",)]
    assert "SELECT on Table" in refused(reader, warehouse_id, "SELECT count(*) FROM orders", first)
    assert rows(reader, warehouse_id, "SHOW VIEWS", first) == [(first, "big", "false")]
