"""Delta statements tarn runs itself (tarn-lake, delta-rs) reached through
`spark.sql` on the gateway, next to the ones the engine runs."""

import datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pyspark.errors import AnalysisException, ParseException

WAIT = datetime.timedelta(minutes=3)


@pytest.fixture(scope="module")
def spark(tarn, w):
    cluster = w.clusters.create_and_wait(
        cluster_name="lake", spark_version="16.4.x-scala2.13", node_type_id="local-2c", num_workers=0, timeout=WAIT
    )
    session = tarn.spark(cluster)
    yield session
    w.clusters.permanent_delete(cluster.cluster_id)


def data_files(w, name):
    """Parquet files on disk under the table's location."""
    root = Path(urlparse(w.tables.get(name).storage_location).path)
    return {p for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}


def test_history_time_travel_and_optimize(spark, w):
    t = "main.default.lake_events"
    spark.sql(f"CREATE TABLE {t} (id BIGINT, user_id BIGINT, kind STRING) USING DELTA")
    for batch in range(4):
        spark.range(batch * 100, (batch + 1) * 100).selectExpr("id", "id % 7 AS user_id", "'click' AS kind") \
            .write.mode("append").saveAsTable(t)
    history = spark.sql(f"DESCRIBE HISTORY {t}").collect()
    assert [r.version for r in history] == [4, 3, 2, 1, 0]
    assert [r.operation for r in history][-1] == "CREATE TABLE"
    assert history[0].operationParameters["mode"] == "Append"
    assert spark.sql(f"SELECT count(*) AS n FROM {t} VERSION AS OF 1").first().n == 100
    assert spark.sql(f"SELECT count(*) AS n FROM {t} VERSION AS OF 0").first().n == 0

    before = spark.sql(f"DESCRIBE DETAIL {t}").first()
    assert (before.format, before.name, before.numFiles) == ("delta", t, 4)
    assert "catalogManaged" in before.tableFeatures
    optimized = spark.sql(f"OPTIMIZE {t} ZORDER BY (user_id)").first()
    assert optimized.metrics["numFilesRemoved"] == "4"
    after = spark.sql(f"DESCRIBE DETAIL {t}").first()
    assert after.numFiles < before.numFiles
    assert spark.sql(f"SELECT count(*) AS n, sum(id) AS s FROM {t}").first().asDict() == {"n": 400, "s": sum(range(400))}
    assert spark.sql(f"DESCRIBE HISTORY {t} LIMIT 1").first().operation == "OPTIMIZE"
    # The engine keeps writing after tarn's commit, and both see each other's versions.
    spark.sql(f"INSERT INTO {t} VALUES (1000, 1, 'view')")
    assert [r.version for r in spark.sql(f"DESCRIBE HISTORY {t} LIMIT 2").collect()] == [6, 5]
    assert spark.sql(f"SELECT count(*) AS n FROM {t}").first().n == 401


def test_vacuum_keeps_files_within_retention(spark, w):
    t = "main.default.lake_vacuum"
    spark.range(0, 50).write.saveAsTable(t)
    spark.range(50, 100).write.mode("append").saveAsTable(t)
    spark.sql(f"OPTIMIZE {t}")
    files = data_files(w, t)
    assert len(files) == 3
    with pytest.raises(AnalysisException, match="DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT"):
        spark.sql(f"VACUUM {t} RETAIN 0 HOURS")
    spark.sql(f"VACUUM {t}")
    assert data_files(w, t) == files, "files younger than the retention period stay"
    spark.sql(f"ALTER TABLE {t} SET TBLPROPERTIES ('delta.deletedFileRetentionDuration' = 'interval 0 hours')")
    assert w.tables.get(t).properties["delta.deletedFileRetentionDuration"] == "interval 0 hours"
    dry = [r.path for r in spark.sql(f"VACUUM {t} RETAIN 0 HOURS DRY RUN").collect()]
    assert len(dry) == 2 and data_files(w, t) == files
    spark.sql(f"VACUUM {t} RETAIN 0 HOURS")
    remaining = data_files(w, t)
    assert len(remaining) == 1 and remaining < files
    assert spark.sql(f"SELECT count(*) AS n FROM {t}").first().n == 100


def test_restore_add_columns_and_comment(spark, w):
    t = "main.default.lake_schema"
    spark.sql(f"CREATE TABLE {t} (id BIGINT, name STRING) USING DELTA")
    spark.sql(f"INSERT INTO {t} VALUES (1, 'a'), (2, 'b')")
    spark.sql(f"ALTER TABLE {t} ADD COLUMNS (score DOUBLE COMMENT 'model score')")
    columns = {c.name: c for c in w.tables.get(t).columns}
    assert columns["score"].type_name.value == "DOUBLE" and columns["score"].comment == "model score"
    spark.sql(f"INSERT INTO {t} VALUES (3, 'c', 0.5)")
    assert spark.sql(f"SELECT score FROM {t} WHERE id = 3").first().score == 0.5
    spark.sql(f"COMMENT ON TABLE {t} IS 'scored users'")
    assert w.tables.get(t).comment == "scored users"
    restored = spark.sql(f"RESTORE TABLE {t} TO VERSION AS OF 1").first()
    assert restored.num_of_files_after_restore == 1
    assert [c.name for c in w.tables.get(t).columns] == ["id", "name"]
    assert sorted(r.id for r in spark.sql(f"SELECT id FROM {t}").collect()) == [1, 2]
    assert spark.sql(f"DESCRIBE HISTORY {t} LIMIT 1").first().operation == "RESTORE"


def test_lake_statement_errors_keep_the_table(spark, w):
    t = "main.default.lake_errors"
    spark.range(5).write.saveAsTable(t)
    with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_NOT_FOUND"):
        spark.sql("DESCRIBE HISTORY main.default.no_such_table")
    with pytest.raises(ParseException, match="PARSE_SYNTAX_ERROR"):
        spark.sql(f"VACUUM {t} RETAIN many HOURS")
    with pytest.raises(AnalysisException, match="DELTA_ZORDERING_COLUMN_DOES_NOT_EXIST"):
        spark.sql(f"OPTIMIZE {t} ZORDER BY (nope)")
    with pytest.raises(AnalysisException, match="FIELDS_ALREADY_EXISTS"):
        spark.sql(f"ALTER TABLE {t} ADD COLUMNS (id BIGINT)")
    assert spark.sql(f"SELECT count(*) AS n FROM {t}").first().n == 5
    assert [r.version for r in spark.sql(f"DESCRIBE HISTORY {t}").collect()] == [1, 0]


def test_system_tables_from_pyspark(spark, w):
    rows = spark.sql("SELECT cluster_name FROM system.compute.clusters WHERE cluster_name = 'lake'").collect()
    assert [r.cluster_name for r in rows] == ["lake"]
    calls = spark.sql("SELECT count(*) AS n FROM system.access.audit WHERE service_name = 'clusters'").collect()
    assert calls[0].n >= 1
    # By name, without SQL text: refreshed as well (the cluster is newer than the last refresh).
    cluster_id = w.clusters.create(cluster_name="by_name", spark_version="16.4.x-scala2.13").cluster_id
    try:
        names = [r.cluster_name for r in spark.table("system.compute.clusters").collect()]
        assert "by_name" in names
    finally:
        w.clusters.permanent_delete(cluster_id)


def test_update_delete_merge_are_commits_like_any_other(spark, w):
    spark.createDataFrame([(1, "a", 1.0), (2, "b", None), (3, "c", 3.0)], "id long, k string, v double") \
        .write.saveAsTable("main.default.dml")
    spark.sql("UPDATE main.default.dml SET v = 9.0 WHERE id = 2").collect()
    spark.sql("DELETE FROM main.default.dml WHERE id = 3").collect()
    spark.sql("MERGE INTO main.default.dml t USING (SELECT 1 AS id, 'z' AS k, 5.0 AS v UNION ALL "
              "SELECT 4, 'n', 4.0) s ON t.id = s.id "
              "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *").collect()
    rows = sorted(tuple(r) for r in spark.table("main.default.dml").collect())
    assert rows == [(1, "z", 5.0), (2, "b", 9.0), (4, "n", 4.0)]
    history = [(h.version, h.operation) for h in spark.sql("DESCRIBE HISTORY main.default.dml").collect()]
    assert history == [(4, "MERGE"), (3, "DELETE"), (2, "UPDATE"), (1, "WRITE"), (0, "CREATE TABLE")]
    assert [c.name for c in w.tables.get("main.default.dml").columns] == ["id", "k", "v"]
