"""The catalog through databricks-sdk, and Delta tables written by PySpark
through tarn's Spark Connect gateway."""

import datetime

import pytest
from pyspark.errors import AnalysisException
from databricks.sdk import errors
from databricks.sdk.service.catalog import VolumeType

from conftest import Tarn

SPARK_VERSION = "16.4.x-scala2.13"
WAIT = datetime.timedelta(minutes=3)


def test_default_namespace_exists(w):
    assert "main" in [c.name for c in w.catalogs.list()]
    assert w.schemas.get("main.default").full_name == "main.default"
    assert w.schemas.get("hive_metastore.default").full_name == "main.default"


def test_catalog_schema_volume_crud(w):
    w.catalogs.create(name="crud_cat", comment="c", properties={"team": "data"})
    try:
        cat = w.catalogs.get("crud_cat")
        assert (cat.comment, cat.properties, cat.owner) == ("c", {"team": "data"}, "admin")
        w.schemas.create(name="Bronze", catalog_name="crud_cat")
        assert [s.name for s in w.schemas.list(catalog_name="crud_cat")] == ["bronze"]
        with pytest.raises(errors.ResourceConflict):
            w.schemas.create(name="bronze", catalog_name="crud_cat")
        vol = w.volumes.create(catalog_name="crud_cat", schema_name="bronze", name="landing", volume_type=VolumeType.MANAGED)
        assert vol.full_name == "crud_cat.bronze.landing" and vol.storage_location.startswith("file:///")
        assert [v.name for v in w.volumes.list(catalog_name="crud_cat", schema_name="bronze")] == ["landing"]
        w.volumes.update("crud_cat.bronze.landing", comment="raw files")
        assert w.volumes.read("crud_cat.bronze.landing").comment == "raw files"
        w.schemas.update("crud_cat.bronze", comment="raw layer")
        assert w.schemas.get("crud_cat.bronze").comment == "raw layer"
        # A schema that still holds a volume is not dropped without force.
        with pytest.raises(errors.BadRequest):
            w.schemas.delete("crud_cat.bronze")
        assert w.volumes.read("crud_cat.bronze.landing").name == "landing"
        w.schemas.delete("crud_cat.bronze", force=True)
        with pytest.raises(errors.NotFound):
            w.volumes.read("crud_cat.bronze.landing")
    finally:
        w.catalogs.delete("crud_cat", force=True)
    with pytest.raises(errors.NotFound):
        w.catalogs.get("crud_cat")


def test_bad_names_and_unknown_objects(w):
    with pytest.raises(errors.NotFound):
        w.tables.get("main.default.no_such_table")
    assert not w.tables.exists("main.default.no_such_table").table_exists
    with pytest.raises(errors.NotFound):
        w.schemas.create(name="x", catalog_name="no_such_catalog")
    with pytest.raises(errors.BadRequest):
        w.schemas.create(name="a/b", catalog_name="main")
    with pytest.raises(errors.BadRequest):
        w.catalogs.delete("main")
    assert w.schemas.get("main.default")


@pytest.fixture(scope="module")
def two_clusters(w):
    a = w.clusters.create(cluster_name="writer", spark_version=SPARK_VERSION)
    b = w.clusters.create(cluster_name="reader", spark_version=SPARK_VERSION)
    yield a.result(timeout=WAIT), b.result(timeout=WAIT)
    for c in (a, b):
        w.clusters.permanent_delete(c.cluster_id)


def test_delta_table_written_on_one_cluster_is_read_on_another(tarn, w, two_clusters):
    writer, reader = (tarn.spark(c) for c in two_clusters)
    assert writer.conf.get("spark.sql.sources.default") == "delta"
    writer.sql("CREATE SCHEMA IF NOT EXISTS main.sales")
    df = writer.createDataFrame([(1, "a", 2.5), (2, "b", 3.0), (3, "a", 1.0)], "id long, region string, amount double")
    df.write.saveAsTable("main.sales.orders")
    writer.sql("INSERT INTO main.sales.orders VALUES (4, 'c', 9.5)")
    writer.range(5).write.saveAsTable("main.sales.ids")
    assert reader.table("main.sales.ids").count() == 5
    assert reader.table("main.sales.orders").count() == 4
    assert reader.sql("SELECT sum(amount) FROM hive_metastore.sales.orders").collect()[0][0] == 16.0
    info = w.tables.get("main.sales.orders")
    assert (info.table_type.value, info.data_source_format.value) == ("MANAGED", "DELTA")
    assert [(c.name, c.type_name.value) for c in info.columns] == [("id", "LONG"), ("region", "STRING"), ("amount", "DOUBLE")]
    assert info.owner == "admin" and info.storage_location.startswith("file:///")
    assert [t.name for t in w.tables.list(catalog_name="main", schema_name="sales")] == ["ids", "orders"]
    assert sorted(r.tableName for r in reader.sql("SHOW TABLES IN main.sales").collect()) == ["ids", "orders"]


def test_save_as_table_modes_as_databricks_users_write_them(tarn, w, two_clusters):
    spark = tarn.spark(two_clusters[0])
    spark.sql("CREATE SCHEMA IF NOT EXISTS main.modes")
    df = spark.createDataFrame([(1, "eu", None), (2, "us", 3.5), (3, "eu", 1.5)], "id long, region string, amount double")
    df.write.partitionBy("region").saveAsTable("main.modes.by_region")
    partitions = {c.name: c.partition_index for c in w.tables.get("main.modes.by_region").columns}
    assert partitions == {"id": None, "region": 0, "amount": None}
    with pytest.raises(Exception, match="(?i)already exists"):
        df.write.saveAsTable("main.modes.by_region")
    df.write.mode("append").saveAsTable("main.modes.by_region")
    assert spark.table("main.modes.by_region").where("region = 'eu'").count() == 4
    df.limit(1).write.mode("overwrite").saveAsTable("main.modes.by_region")
    assert spark.table("main.modes.by_region").count() == 1
    df.write.mode("ignore").saveAsTable("main.modes.by_region")
    assert tarn.spark(two_clusters[1]).table("main.modes.by_region").count() == 1


def test_partitioned_table_from_sql(tarn, w, two_clusters):
    spark = tarn.spark(two_clusters[0])
    spark.sql("CREATE SCHEMA IF NOT EXISTS main.events")
    spark.sql("CREATE TABLE main.events.clicks (user_id long, day string) PARTITIONED BY (day)")
    spark.createDataFrame([(1, "2026-01-01"), (2, "2026-01-02"), (3, "2026-01-02")], "user_id long, day string").write.insertInto(
        "main.events.clicks"
    )
    assert tarn.spark(two_clusters[1]).table("main.events.clicks").where("day = '2026-01-02'").count() == 2
    columns = {c.name: c.partition_index for c in w.tables.get("main.events.clicks").columns}
    assert columns["day"] == 0 and columns["user_id"] is None


def test_create_table_as_select(tarn, w, two_clusters):
    spark = tarn.spark(two_clusters[0])
    spark.sql("CREATE SCHEMA IF NOT EXISTS main.ctas")
    # Nullable columns (a file read, a createDataFrame) are what Sail alone fails on.
    spark.createDataFrame([(1, "eu", None), (2, "us", 3.5), (3, "eu", 1.5)], "id long, region string, amount double") \
        .createOrReplaceTempView("src")
    spark.sql("CREATE TABLE main.ctas.by_region PARTITIONED BY (region) COMMENT 'from src' "
              "AS SELECT id, amount, region FROM src")
    info = w.tables.get("main.ctas.by_region")
    assert [c.name for c in info.columns] == ["id", "amount", "region"] and info.comment == "from src"
    assert {c.name: c.partition_index for c in info.columns}["region"] == 0
    assert tarn.spark(two_clusters[1]).table("main.ctas.by_region").count() == 3
    with pytest.raises(AnalysisException, match="(?i)already exists"):
        spark.sql("CREATE TABLE main.ctas.by_region AS SELECT * FROM src")
    spark.sql("CREATE TABLE IF NOT EXISTS main.ctas.by_region AS SELECT * FROM src WHERE id = 1")
    assert spark.table("main.ctas.by_region").count() == 3
    spark.sql("CREATE OR REPLACE TABLE main.ctas.by_region AS SELECT id, amount, region FROM src WHERE id > 1")
    assert sorted(r.id for r in spark.table("main.ctas.by_region").collect()) == [2, 3]


def test_temp_views_stay_in_their_session(tarn, two_clusters):
    first, second = tarn.spark(two_clusters[0]), tarn.spark(two_clusters[0])
    first.range(3).createOrReplaceTempView("mine")
    assert first.table("mine").count() == 3
    with pytest.raises(Exception, match="(?i)not found|cannot be found|does not exist"):
        second.table("mine").count()


def test_sql_errors_reach_the_client_and_keep_the_data(tarn, w, two_clusters):
    spark = tarn.spark(two_clusters[0])
    spark.sql("CREATE SCHEMA IF NOT EXISTS main.safe")
    spark.range(3).write.saveAsTable("main.safe.t")
    with pytest.raises(Exception):
        spark.sql("SELEC oops FROM").collect()
    with pytest.raises(Exception, match="(?i)not found|cannot be found|does not exist"):
        spark.table("main.safe.missing").count()
    assert spark.table("main.safe.t").count() == 3


def test_gateway_refuses_bad_tokens_and_stopped_clusters(tarn, w, two_clusters):
    from pyspark.sql import SparkSession

    url = two_clusters[0].default_tags["SparkConnectUrl"]
    bad = SparkSession.builder.remote(url + ";token=dapinotatoken").create()
    try:
        with pytest.raises(Exception, match="UNAUTHENTICATED"):
            bad.range(1).count()
    finally:
        bad.stop()
    stopped = w.clusters.create(spark_version=SPARK_VERSION).result(timeout=WAIT)
    w.clusters.delete_and_wait(stopped.cluster_id, timeout=WAIT)
    with pytest.raises(Exception, match="not RUNNING"):
        tarn.spark(stopped).range(1).count()
    w.clusters.permanent_delete(stopped.cluster_id)


def test_tables_survive_a_restart(tmp_home):
    tarn = Tarn(tmp_home).start()
    w = tarn.client()
    c = w.clusters.create_and_wait(spark_version=SPARK_VERSION, timeout=WAIT)
    spark = tarn.spark(c)
    spark.sql("CREATE SCHEMA main.kept")
    spark.range(100).write.saveAsTable("main.kept.numbers")
    tarn.stop()
    again = Tarn(tmp_home).start()
    try:
        w = again.client()
        assert w.tables.get("main.kept.numbers").columns[0].name == "id"
        w.clusters.start(c.cluster_id).result(timeout=WAIT)
        spark = again.spark(w.clusters.get(c.cluster_id))
        assert spark.table("main.kept.numbers").count() == 100
    finally:
        again.stop()
