"""A SQL pipeline through `w.pipelines`: `STREAM read_files` over CSV,
CONSTRAINT ... EXPECT with DROP ROW, FAIL UPDATE and warn, a materialized
view over the streaming table; a FAIL UPDATE leaves the tables as they
were. Then tarn is killed between a batch's Delta commit and its record
(and before the commit), and the next update neither loses nor
duplicates a row."""

import io
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
from databricks.sdk import errors
from databricks.sdk.service.catalog import VolumeType
from databricks.sdk.service.pipelines import FileLibrary, PipelineLibrary
from databricks.sdk.service.workspace import ImportFormat

from conftest import Tarn, wait_for
from test_pipelines import finish, flow_events, sql_rows

LANDING = "/Volumes/main/shop/landing/orders"

PIPELINE = """-- Orders as they land.
CREATE OR REFRESH STREAMING TABLE orders_bronze
COMMENT 'raw orders'
AS SELECT * FROM STREAM read_files('/Volumes/main/shop/landing/orders', format => 'csv', header => 'true');

CREATE OR REFRESH STREAMING TABLE orders_silver (
  CONSTRAINT valid_id EXPECT (order_id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT positive_amount EXPECT (amount > 0) ON VIOLATION FAIL UPDATE,
  CONSTRAINT this_year EXPECT (order_date >= DATE'2026-01-01')
)
AS SELECT order_id, customer, CAST(amount AS DOUBLE) AS amount, CAST(order_date AS DATE) AS order_date
FROM STREAM(LIVE.orders_bronze);

CREATE TEMPORARY VIEW dated_orders AS SELECT * FROM LIVE.orders_silver WHERE order_date IS NOT NULL;

CREATE OR REFRESH MATERIALIZED VIEW daily_revenue
COMMENT 'revenue per day'
PARTITIONED BY (order_date)
AS SELECT order_date, SUM(amount) AS revenue, COUNT(*) AS orders
FROM dated_orders GROUP BY order_date;
"""

HEADER = "order_id,customer,amount,order_date\n"
# One row without an id (dropped), one from last year (warned, kept).
FIRST = HEADER + "1,ann,10.5,2026-03-01\n2,bob,20,2026-03-01\n,cy,5,2026-03-02\n4,dee,7.5,2025-12-31\n5,ed,2,2026-03-02\n"
NEGATIVE = HEADER + "6,fay,3,2026-03-03\n7,gus,-3,2026-03-03\n"


def csv(text):
    return io.BytesIO(text.encode())


def make_pipeline(w, name, schema, landing):
    try:
        w.schemas.create(name=schema, catalog_name="main")
    except errors.ResourceAlreadyExists:
        pass
    w.volumes.create(catalog_name="main", schema_name=schema, name="landing", volume_type=VolumeType.MANAGED)
    me = w.current_user.me().user_name
    path = f"/Users/{me}/{name}/orders.sql"
    w.workspace.mkdirs(f"/Users/{me}/{name}")
    text = PIPELINE.replace("/Volumes/main/shop/landing/orders", landing)
    w.workspace.upload(path, io.BytesIO(text.encode()), format=ImportFormat.RAW, overwrite=True)
    return w.pipelines.create(
        name=name, catalog="main", schema=schema, libraries=[PipelineLibrary(file=FileLibrary(path=path))]
    ).pipeline_id


@pytest.fixture(scope="module")
def orders(w):
    pipeline_id = make_pipeline(w, "orders-sql", "shop", LANDING)
    w.files.upload(f"{LANDING}/2026-03-01.csv", csv(FIRST))
    return pipeline_id


def completed(events):
    return {e["origin"]["flow_name"]: e["details"]["flow_progress"] for e in events
            if e["details"]["flow_progress"]["status"] == "COMPLETED"}


def test_expectations_drop_warn_and_count(w, orders):
    update_id = w.pipelines.start_update(orders).update_id
    assert finish(w, orders, update_id) == "COMPLETED", [e.message for e in w.pipelines.list_pipeline_events(orders)]
    flows = completed(flow_events(w, orders, update_id))
    assert flows["orders_bronze"]["metrics"]["num_output_rows"] == 5
    silver = flows["orders_silver"]
    assert silver["metrics"]["num_output_rows"] == 4
    quality = {e["name"]: (e["passed_records"], e["failed_records"]) for e in silver["data_quality"]["expectations"]}
    assert quality == {"valid_id": (4, 1), "positive_amount": (5, 0), "this_year": (4, 1)}
    assert silver["data_quality"]["dropped_records"] == 1
    rows = sql_rows(w, "SELECT order_date, revenue, orders FROM main.shop.daily_revenue ORDER BY order_date")
    assert rows == [["2025-12-31", "7.5", "1"], ["2026-03-01", "30.5", "2"], ["2026-03-02", "2.0", "1"]]
    revenue = w.tables.get("main.shop.daily_revenue")
    assert revenue.comment == "revenue per day"
    assert [c.partition_index for c in revenue.columns if c.name == "order_date"] == [0]
    stored = Path(urlparse(revenue.storage_location).path)
    assert sorted(p.name for p in stored.iterdir() if not p.name.startswith("_")) == [
        "order_date=2025-12-31", "order_date=2026-03-01", "order_date=2026-03-02"]
    assert w.tables.get("main.shop.orders_bronze").table_type.value == "STREAMING_TABLE"


def test_fail_update_stops_before_the_flow_writes(w, orders):
    before = sql_rows(w, "SELECT order_id FROM main.shop.orders_silver ORDER BY order_id")
    revenue = sql_rows(w, "SELECT * FROM main.shop.daily_revenue ORDER BY order_date")
    w.files.upload(f"{LANDING}/2026-03-03.csv", csv(NEGATIVE))
    update_id = w.pipelines.start_update(orders).update_id
    assert finish(w, orders, update_id) == "FAILED"
    errors_logged = [e for e in w.pipelines.list_pipeline_events(orders)
                     if e.origin.update_id == update_id and e.level.value == "ERROR"]
    text = " ".join(e.message + " ".join(x.message for x in e.error.exceptions) for e in errors_logged if e.error)
    assert "positive_amount" in text and "orders_silver" in text and "gus" in text, text
    assert sql_rows(w, "SELECT order_id FROM main.shop.orders_silver ORDER BY order_id") == before
    assert sql_rows(w, "SELECT * FROM main.shop.daily_revenue ORDER BY order_date") == revenue
    assert w.pipelines.get(orders).state.value in ("IDLE", "FAILED")


def test_a_batch_whose_rows_are_all_dropped_still_creates_and_advances(w):
    """The engine writes no file for no rows: the tables still get their
    columns, the batch still counts, and the next file is read alone."""
    landing = "/Volumes/main/shop_empty/landing/orders"
    pipeline_id = make_pipeline(w, "orders-empty", "shop_empty", landing)
    w.files.upload(f"{landing}/1.csv", csv(HEADER + ",ann,10,2026-03-01\n,bob,4,2026-03-02\n"))
    update_id = w.pipelines.start_update(pipeline_id).update_id
    assert finish(w, pipeline_id, update_id) == "COMPLETED"
    silver = completed(flow_events(w, pipeline_id, update_id))["orders_silver"]
    assert silver["metrics"]["num_output_rows"] == 0
    assert silver["data_quality"]["dropped_records"] == 2
    columns = [c.name for c in w.tables.get("main.shop_empty.orders_silver").columns]
    assert columns == ["order_id", "customer", "amount", "order_date"]
    assert sql_rows(w, "SELECT count(*) FROM main.shop_empty.orders_silver") == [["0"]]
    # A row without a date: `this_year` is NULL for it, which fails the
    # expectation (a row a WHERE would not keep), and a warning keeps it.
    w.files.upload(f"{landing}/2.csv", csv(HEADER + "9,cy,3,2026-03-04\n10,dan,4,\n"))
    update_id = w.pipelines.start_update(pipeline_id).update_id
    assert finish(w, pipeline_id, update_id) == "COMPLETED"
    flows = completed(flow_events(w, pipeline_id, update_id))
    assert flows["orders_bronze"]["metrics"]["num_output_rows"] == 2
    quality = flows["orders_silver"]["data_quality"]
    counts = {e["name"]: (e["passed_records"], e["failed_records"]) for e in quality["expectations"]}
    assert counts == {"valid_id": (2, 0), "positive_amount": (2, 0), "this_year": (1, 1)}
    assert quality["dropped_records"] == 0
    rows = sql_rows(w, "SELECT order_id, customer, order_date FROM main.shop_empty.orders_silver ORDER BY customer")
    assert rows == [["9", "cy", "2026-03-04"], ["10", "dan", None]]


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_a_crash_mid_batch_neither_loses_nor_duplicates_rows(point):
    home = Path(tempfile.mkdtemp(prefix="tarn-crash-"))
    try:
        tarn = Tarn(home).start()
        w = tarn.client()
        landing = "/Volumes/main/crash/landing/orders"
        pipeline_id = make_pipeline(w, "orders-crash", "crash", landing)
        w.files.upload(f"{landing}/2026-03-01.csv", csv(FIRST))
        state = finish(w, pipeline_id, w.pipelines.start_update(pipeline_id).update_id)
        assert state == "COMPLETED", [e.message for e in w.pipelines.list_pipeline_events(pipeline_id)]
        tarn.stop()

        # The next batch of the bronze flow ends the process at `point`.
        crashing = Tarn(home, extra_env={"TARN_CRASH_AT": point}).start()
        w = crashing.client()
        w.files.upload(f"{landing}/2026-03-04.csv", csv(HEADER + "8,hal,4,2026-03-04\n9,ivy,6,2026-03-04\n"))
        w.pipelines.start_update(pipeline_id)
        assert wait_for(lambda: crashing.proc.poll() is not None, timeout=240, interval=0.5)
        assert crashing.proc.returncode == 86
        crashing.stop()

        tarn = Tarn(home).start()
        w = tarn.client()
        (last, *_) = w.pipelines.list_updates(pipeline_id).updates
        assert last.state.value == "FAILED"
        update_id = w.pipelines.start_update(pipeline_id).update_id
        assert finish(w, pipeline_id, update_id) == "COMPLETED"
        ids = [r[0] for r in sql_rows(w, "SELECT order_id FROM main.crash.orders_bronze ORDER BY CAST(order_id AS INT)")]
        assert ids == ["1", "2", None, "4", "5", "8", "9"] or ids == [None, "1", "2", "4", "5", "8", "9"]
        silver = sql_rows(w, "SELECT order_id FROM main.crash.orders_silver ORDER BY order_id")
        assert [r[0] for r in silver] == ["1", "2", "4", "5", "8", "9"]
        bronze = completed(flow_events(w, pipeline_id, update_id))["orders_bronze"]
        # Committed before the crash: settled, not read again. Not committed: read now.
        assert bronze["metrics"]["num_output_rows"] == (0 if point == "after_commit" else 2)
        tarn.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)
