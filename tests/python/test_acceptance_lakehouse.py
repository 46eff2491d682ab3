"""The lakehouse issue's acceptance path, end to end through databricks-sdk
and PySpark: files uploaded to a volume, read by an engine, saved as a
partitioned Delta table, read back by SQL statements, before and after a
restart of tarn."""

import datetime
import io
import json

import pytest
from databricks.sdk.service.catalog import VolumeType
from databricks.sdk.service.sql import StatementState
from pyspark.errors import AnalysisException
from pyspark.sql import functions as F

from conftest import Tarn

SPARK_VERSION = "16.4.x-scala2.13"
WAIT = datetime.timedelta(minutes=3)
LANDING = "/Volumes/acme/sales/landing"
CSV = "order_id,region,amount\n1,eu,10.5\n2,us,20.0\n3,eu,7.25\n"
JSON = [{"order_id": 4, "region": "apac", "amount": 3.0}, {"order_id": 5, "region": "us", "amount": 1.5}]
BY_REGION = "SELECT region, count(*) AS orders, sum(amount) AS total FROM acme.sales.orders GROUP BY region ORDER BY region"
EXPECTED = [["apac", "1", "3.0"], ["eu", "2", "17.75"], ["us", "2", "21.5"]]


def rows(w, statement):
    (warehouse,) = list(w.warehouses.list())
    r = w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse.id, wait_timeout="50s")
    assert r.status.state == StatementState.SUCCEEDED, r.status
    return r.result.data_array


def test_volume_files_to_a_partitioned_table_that_survives_a_restart(tmp_home):
    tarn = Tarn(tmp_home).start()
    try:
        w = tarn.client()
        w.catalogs.create(name="acme")
        w.schemas.create(name="sales", catalog_name="acme")
        w.volumes.create(catalog_name="acme", schema_name="sales", name="landing", volume_type=VolumeType.MANAGED)
        w.files.upload(f"{LANDING}/orders.csv", io.BytesIO(CSV.encode()))
        lines = "\n".join(json.dumps(r) for r in JSON) + "\n"
        w.files.upload(f"{LANDING}/more/orders.json", io.BytesIO(lines.encode()))

        cluster = w.clusters.create(cluster_name="etl", spark_version=SPARK_VERSION, num_workers=0).result(timeout=WAIT)
        spark = tarn.spark(cluster)
        csv = spark.read.option("header", True).option("inferSchema", True).csv(f"{LANDING}/orders.csv")
        more = spark.read.json(f"{LANDING}/more/")
        orders = csv.select(
            F.col("order_id").cast("bigint"), "region", F.col("amount").cast("double")
        ).unionByName(more.select(F.col("order_id").cast("bigint"), "region", F.col("amount").cast("double")))
        orders.write.partitionBy("region").saveAsTable("acme.sales.orders")

        table = w.tables.get("acme.sales.orders")
        assert [(c.name, c.type_name.value) for c in table.columns] == [
            ("order_id", "LONG"), ("region", "STRING"), ("amount", "DOUBLE")]
        assert [c.name for c in table.columns if c.partition_index is not None] == ["region"]
        assert rows(w, BY_REGION) == EXPECTED
        # SQL reads volume files too, through the same path resolution.
        assert rows(w, f"SELECT count(*) FROM json.`{LANDING}/more/orders.json`") == [["2"]]

        # A path that leaves the volume is refused, and nothing is written.
        with pytest.raises(AnalysisException):
            spark.read.csv(f"{LANDING}/../../../../etc/passwd").collect()
        with pytest.raises(AnalysisException):
            spark.read.csv("/Volumes/acme/sales/no_such_volume/x.csv").collect()

        tarn.stop()
        tarn = Tarn(tmp_home).start()
        w = tarn.client()
        assert rows(w, BY_REGION) == EXPECTED
        assert rows(w, "SELECT order_id FROM acme.sales.orders WHERE region = 'eu' ORDER BY order_id") == [["1"], ["3"]]
    finally:
        tarn.stop()
