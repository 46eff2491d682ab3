"""Quality monitors through `databricks-sdk`'s `w.quality_monitors`: a
time-series monitor with a baseline on a table written through the SQL
warehouse, whose drift metrics find the column that shifted and not the
one that did not; an inference-log monitor with quality metrics per model;
and the refusals."""

import json
import re

import pytest
from databricks.sdk.errors import InvalidParameterValue, NotFound, NotImplemented
from databricks.sdk.service.catalog import (
    MonitorInferenceLog,
    MonitorInferenceLogProblemType,
    MonitorMetric,
    MonitorMetricType,
    MonitorRefreshInfoState,
    MonitorSnapshot,
    MonitorTimeSeries,
)

from conftest import wait_for
from test_pipelines import sql_rows

DAY0 = 1735689600  # 2025-01-01T00:00:00Z
# 20,000 rows 30 s apart: about seven days. From day 4 on, `shifted` moves by
# 50 and `color` turns mostly red; `stable` and `kind` keep their distribution.
EVENTS = f"""
SELECT id,
       timestamp_seconds({DAY0} + id * 30) AS ts,
       CAST((id * 7919) % 1000 AS DOUBLE) / 10.0 AS stable,
       CAST((id * 7919) % 1000 AS DOUBLE) / 10.0 + CASE WHEN id * 30 >= 4 * 86400 THEN 50 ELSE 0 END AS shifted,
       CASE WHEN id * 30 >= 4 * 86400 AND id % 10 < 8 THEN 'red' ELSE element_at(array('red', 'green', 'blue'), CAST(id % 3 AS INT) + 1) END AS color,
       element_at(array('a', 'b'), CAST(id % 2 AS INT) + 1) AS kind
FROM range(20000)
"""


def ended(w, table):
    refreshes = w.quality_monitors.list_refreshes(table).refreshes
    done = (MonitorRefreshInfoState.SUCCESS, MonitorRefreshInfoState.FAILED, MonitorRefreshInfoState.CANCELED)
    return refreshes[0] if refreshes and refreshes[0].state in done else None


def event_tables(w, table, baseline, extra=""):
    """`EVENTS` (with `extra` columns, ", expr AS name"...) as `table`, and
    its first 5,000 rows as `baseline`."""
    sql_rows(w, f"CREATE OR REPLACE TABLE {table} AS SELECT *{extra} FROM ({EVENTS}) AS events")
    sql_rows(w, f"CREATE OR REPLACE TABLE {baseline} AS SELECT * FROM {table} WHERE id < 5000")
    return table, baseline


@pytest.fixture(scope="module")
def tables(tarn, w):
    return event_tables(w, "main.default.mon_events", "main.default.mon_base")


def test_drift_finds_the_shifted_column_and_not_the_stable_one(w, tables):
    table, baseline = tables
    info = w.quality_monitors.create(
        table_name=table,
        assets_dir="/Workspace/Users/admin/monitors",
        output_schema_name="main.default",
        time_series=MonitorTimeSeries(timestamp_col="ts", granularities=["1 day"]),
        baseline_table_name=baseline,
    )
    assert info.profile_metrics_table_name == "main.default.mon_events_profile_metrics"
    refresh = wait_for(lambda: ended(w, table), timeout=180, interval=1)
    assert refresh.state == MonitorRefreshInfoState.SUCCESS, refresh.message
    assert w.quality_monitors.get(table).status.value == "MONITOR_STATUS_ACTIVE"

    counts = sql_rows(w, "SELECT sum(count) FROM main.default.mon_events_profile_metrics "
                         "WHERE column_name = ':table' AND log_type = 'INPUT'")
    assert int(counts[0][0]) == 20000
    stats = sql_rows(w, "SELECT min, max, percent_null, distinct_count FROM main.default.mon_events_profile_metrics "
                        "WHERE column_name = 'stable' AND log_type = 'BASELINE'")
    assert [float(v) for v in stats[0][:3]] == [0.0, 99.9, 0.0]
    assert 950 <= int(stats[0][3]) <= 1050

    def drift(column, kind, measure):
        rows = sql_rows(w, f"SELECT max({measure}) FROM main.default.mon_events_drift_metrics "
                           f"WHERE column_name = '{column}' AND drift_type = '{kind}'")
        return float(rows[0][0])

    assert drift("shifted", "BASELINE", "ks_test.statistic") > 0.4
    assert drift("shifted", "BASELINE", "wasserstein_distance") > 40
    assert drift("shifted", "BASELINE", "population_stability_index") > 1
    assert drift("stable", "BASELINE", "ks_test.statistic") < 0.1
    assert drift("stable", "BASELINE", "wasserstein_distance") < 2
    assert drift("shifted", "CONSECUTIVE", "ks_test.statistic") > 0.4
    assert drift("color", "BASELINE", "tv_distance") > 0.3
    assert drift("kind", "BASELINE", "tv_distance") < 0.05
    pvalue = sql_rows(w, "SELECT min(chi_squared_test.pvalue) FROM main.default.mon_events_drift_metrics "
                         "WHERE column_name = 'color' AND drift_type = 'BASELINE'")
    assert float(pvalue[0][0]) < 1e-6

    again = w.quality_monitors.run_refresh(table)
    assert wait_for(lambda: w.quality_monitors.get_refresh(table, again.refresh_id).state
                    == MonitorRefreshInfoState.SUCCESS, timeout=180, interval=1)
    assert len(w.quality_monitors.list_refreshes(table).refreshes) == 2
    with pytest.raises(Exception, match="cannot be canceled"):
        w.quality_monitors.cancel_refresh(table, again.refresh_id)
    w.quality_monitors.delete(table)
    with pytest.raises(NotFound):
        w.quality_monitors.get(table)
    # The output tables stay, as on Databricks.
    assert sql_rows(w, "SELECT count(*) FROM main.default.mon_events_drift_metrics")[0][0] != "0"


def test_inference_log_monitors_score_each_model(w, tables):
    sql_rows(w, f"""CREATE OR REPLACE TABLE main.default.mon_preds AS
        SELECT ts, CAST(id % 2 AS STRING) AS model_version, stable,
               CASE WHEN stable > 50 THEN 'yes' ELSE 'no' END AS label,
               CASE WHEN id % 2 = 0 THEN CASE WHEN stable > 50 THEN 'yes' ELSE 'no' END ELSE 'yes' END AS prediction
        FROM ({EVENTS})""")
    table = "main.default.mon_preds"
    w.quality_monitors.create(
        table_name=table,
        assets_dir="/Workspace/Users/admin/monitors",
        output_schema_name="main.default",
        inference_log=MonitorInferenceLog(
            problem_type=MonitorInferenceLogProblemType.PROBLEM_TYPE_CLASSIFICATION,
            timestamp_col="ts",
            granularities=["1 week"],
            model_id_col="model_version",
            prediction_col="prediction",
            label_col="label",
        ),
        slicing_exprs=["stable > 50"],
    )
    refresh = wait_for(lambda: ended(w, table), timeout=180, interval=1)
    assert refresh.state == MonitorRefreshInfoState.SUCCESS, refresh.message

    def by_model():
        rows = sql_rows(w, "SELECT model_version, sum(count), min(accuracy_score), max(accuracy_score) "
                           "FROM main.default.mon_preds_profile_metrics WHERE column_name = ':table' "
                           "AND slice_key IS NULL GROUP BY model_version ORDER BY model_version")
        return {r[0]: (int(r[1]), float(r[2]), float(r[3])) for r in rows}

    models = by_model()
    assert models["0"][0] == 10000 and models["0"][1] == 1.0
    assert models["1"][0] == 10000 and 0.4 < models["1"][2] < 0.6
    assert models["*"][0] == 20000
    sliced = sql_rows(w, "SELECT slice_value, sum(count) FROM main.default.mon_preds_profile_metrics "
                         "WHERE column_name = ':table' AND model_version = '*' AND slice_key = 'stable > 50' "
                         "GROUP BY 1")
    assert sum(int(n) for _, n in sliced) == 20000 and {v for v, _ in sliced} == {"true", "false"}

    # A new model's rows land in an existing week: that week's rows for "*" and its slices are rewritten.
    sql_rows(w, f"INSERT INTO {table} SELECT ts, '2' AS model_version, stable, 'yes' AS label, 'yes' AS prediction "
                f"FROM ({EVENTS}) WHERE id < 1000")
    again = refresh_now(w, table)
    assert again.message.startswith("Incremental refresh") and read_counts(again.message)[1] == 1000, again.message
    models = by_model()
    assert models["2"] == (1000, 1.0, 1.0) and models["0"][0] == 10000 and models["*"][0] == 21000
    dupes = sql_rows(w, "SELECT window.start, model_version, slice_key, slice_value, column_name, log_type, count(*) "
                        "FROM main.default.mon_preds_profile_metrics GROUP BY 1, 2, 3, 4, 5, 6 HAVING count(*) > 1")
    assert dupes == []
    w.quality_monitors.delete(table)


def test_bad_monitors_are_refused(w, tables):
    table, _ = tables
    with pytest.raises(InvalidParameterValue, match="'nope'"):
        w.quality_monitors.create(
            table_name=table,
            assets_dir="/x",
            output_schema_name="main.default",
            time_series=MonitorTimeSeries(timestamp_col="nope", granularities=["1 day"]),
        )
    with pytest.raises(NotFound):
        w.quality_monitors.create(table_name="main.default.no_table", assets_dir="/x",
                                  output_schema_name="main.default", snapshot=MonitorSnapshot())
    with pytest.raises(NotFound):
        w.quality_monitors.create(table_name=table, assets_dir="/x", output_schema_name="main.nope",
                                  snapshot=MonitorSnapshot())
    with pytest.raises(InvalidParameterValue, match="granularity"):
        w.quality_monitors.create(
            table_name=table,
            assets_dir="/x",
            output_schema_name="main.default",
            time_series=MonitorTimeSeries(timestamp_col="ts", granularities=["3 fortnights"]),
        )
    with pytest.raises(InvalidParameterValue, match="nope"):
        w.quality_monitors.create(table_name=table, assets_dir="/x", output_schema_name="main.default",
                                  snapshot=MonitorSnapshot(), slicing_exprs=["nope > 3"])
    with pytest.raises(InvalidParameterValue, match="slicing_exprs"):
        w.quality_monitors.create(table_name=table, assets_dir="/x", output_schema_name="main.default",
                                  snapshot=MonitorSnapshot(), slicing_exprs=["kind >"])


DONE = (MonitorRefreshInfoState.SUCCESS, MonitorRefreshInfoState.FAILED, MonitorRefreshInfoState.CANCELED)


def refresh_now(w, table):
    """Runs a refresh, waits for it and answers it (it must succeed)."""
    started = w.quality_monitors.run_refresh(table)

    def ended_one():
        r = w.quality_monitors.get_refresh(table, started.refresh_id)
        return r if r.state in DONE else None

    refresh = wait_for(ended_one, timeout=180, interval=0.5)
    assert refresh.state == MonitorRefreshInfoState.SUCCESS, refresh.message
    return refresh


def read_counts(message):
    """(data files, rows) a refresh's message says it read."""
    m = re.search(r"read (\d+) data files? \((\d+) rows?\)", message)
    assert m, message
    return int(m.group(1)), int(m.group(2))


def input_profile(w, table):
    return sql_rows(w, f"SELECT CAST(window.start AS STRING), column_name, count, avg, distinct_count, "
                       f"logging_table_commit_version FROM {table}_profile_metrics "
                       f"WHERE log_type = 'INPUT' AND slice_key IS NULL ORDER BY 1, 2")


def test_refreshes_read_only_appended_files_and_recompute_after_a_delete(w, tables):
    _, baseline = tables
    table = "main.default.mon_inc"
    day = 2880  # rows per day, 30 s apart
    sql_rows(w, f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM ({EVENTS}) WHERE id < {2 * day}")
    w.quality_monitors.create(
        table_name=table,
        assets_dir="/Workspace/Users/admin/monitors",
        output_schema_name="main.default",
        time_series=MonitorTimeSeries(timestamp_col="ts", granularities=["1 day"]),
        baseline_table_name=baseline,
    )
    first = wait_for(lambda: ended(w, table), timeout=180, interval=0.5)
    assert first.state == MonitorRefreshInfoState.SUCCESS, first.message
    assert first.message.startswith("Full refresh (no kept state)"), first.message
    assert read_counts(first.message)[1] == 2 * day
    assert "baseline version" in first.message and "read" in first.message
    before = input_profile(w, table)
    assert len({r[0] for r in before}) == 2

    # A third day appended: only its files are read, the baseline is not read again.
    sql_rows(w, f"INSERT INTO {table} SELECT * FROM ({EVENTS}) WHERE id >= {2 * day} AND id < {3 * day}")
    second = refresh_now(w, table)
    assert second.message.startswith("Incremental refresh"), second.message
    assert read_counts(second.message)[1] == day
    assert "1 window recomputed" in second.message and "reused" in second.message, second.message
    after = input_profile(w, table)
    old_windows = {r[0] for r in before}
    assert [r for r in after if r[0] in old_windows] == before, "the old windows' rows are unchanged"
    new_rows = [r for r in after if r[0] not in old_windows]
    assert {r[1]: int(r[2]) for r in new_rows}[":table"] == day
    assert int(new_rows[0][5]) > int(before[0][5]), "the new window carries the newer table version"
    # One current row per window, granularity, slice, column and log type.
    dupes = sql_rows(w, f"SELECT window.start, granularity, slice_key, slice_value, column_name, log_type, count(*) "
                        f"FROM {table}_profile_metrics GROUP BY 1, 2, 3, 4, 5, 6 HAVING count(*) > 1")
    assert dupes == []
    drift = sql_rows(w, f"SELECT count(*) FROM {table}_drift_metrics WHERE drift_type = 'CONSECUTIVE' "
                        f"AND column_name = 'stable'")
    assert int(drift[0][0]) == 2, "days 2 and 3 each against the day before"
    dupes = sql_rows(w, f"SELECT window.start, drift_type, column_name, count(*) FROM {table}_drift_metrics "
                        f"GROUP BY 1, 2, 3 HAVING count(*) > 1")
    assert dupes == []

    # Nothing new: nothing read.
    third = refresh_now(w, table)
    assert read_counts(third.message) == (0, 0), third.message

    # A DELETE removes files: the kept windows cannot be trusted, everything is read again.
    sql_rows(w, f"DELETE FROM {table} WHERE id < {day}")
    fourth = refresh_now(w, table)
    assert fourth.message.startswith("Full refresh (commit"), fourth.message
    assert read_counts(fourth.message)[1] == 2 * day
    counts = sql_rows(w, f"SELECT CAST(window.start AS STRING), count FROM {table}_profile_metrics "
                         f"WHERE log_type = 'INPUT' AND column_name = ':table' AND slice_key IS NULL ORDER BY 1")
    assert [int(c) for _, c in counts] == [day, day], "the deleted day's window is gone"
    w.quality_monitors.delete(table)


def test_slicing_exprs_profile_and_drift_each_slice(w, tables):
    _, baseline = tables
    table = "main.default.mon_sliced"
    sql_rows(w, f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM ({EVENTS}) WHERE id < 4000")
    info = w.quality_monitors.create(
        table_name=table,
        assets_dir="/Workspace/Users/admin/monitors",
        output_schema_name="main.default",
        time_series=MonitorTimeSeries(timestamp_col="ts", granularities=["1 week"]),
        baseline_table_name=baseline,
        slicing_exprs=["kind", "stable > 50"],
    )
    assert info.slicing_exprs == ["kind", "stable > 50"]
    refresh = wait_for(lambda: ended(w, table), timeout=180, interval=0.5)
    assert refresh.state == MonitorRefreshInfoState.SUCCESS, refresh.message
    rows = sql_rows(w, f"SELECT slice_key, slice_value, sum(count) FROM {table}_profile_metrics "
                       f"WHERE column_name = ':table' AND log_type = 'INPUT' GROUP BY 1, 2")
    counts = {(k, v): int(n) for k, v, n in rows}
    assert counts[(None, None)] == 4000
    assert counts[("kind", "a")] == 2000 and counts[("kind", "b")] == 2000
    assert counts[("stable > 50", "true")] + counts[("stable > 50", "false")] == 4000
    assert counts[("stable > 50", "true")] == int(sql_rows(w, f"SELECT count(*) FROM {table} WHERE stable > 50")[0][0])
    # Drift per slice, against the baseline's same slice: `stable` within a slice of `stable > 50` is
    # the same distribution in both tables, so it barely drifts.
    drift = sql_rows(w, f"SELECT slice_value, ks_test.statistic FROM {table}_drift_metrics "
                        f"WHERE drift_type = 'BASELINE' AND column_name = 'stable' AND slice_key = 'stable > 50'")
    assert {r[0] for r in drift} == {"true", "false"}
    assert all(float(r[1]) < 0.1 for r in drift), drift
    w.quality_monitors.delete(table)


DOUBLE = json.dumps({"name": "output", "type": "double", "nullable": True, "metadata": {}})


def metric(kind, name, inputs, definition):
    return MonitorMetric(type=MonitorMetricType(f"CUSTOM_METRIC_TYPE_{kind}"), name=name, input_columns=inputs,
                         definition=definition, output_data_type=DOUBLE)


def test_custom_metrics_aggregate_derive_and_drift(w, tables):
    _, baseline = tables
    table = "main.default.mon_custom"
    sql_rows(w, f"CREATE OR REPLACE TABLE {table} AS {EVENTS}")
    w.quality_monitors.create(
        table_name=table,
        assets_dir="/Workspace/Users/admin/monitors",
        output_schema_name="main.default",
        time_series=MonitorTimeSeries(timestamp_col="ts", granularities=["1 day"]),
        baseline_table_name=baseline,
        custom_metrics=[
            metric("AGGREGATE", "sum_sq", ["stable", "shifted"], "sum({{input_column}} * {{ input_column }})"),
            metric("AGGREGATE", "red_share", [":table"], "avg(CASE WHEN color = 'red' THEN 1.0 ELSE 0.0 END)"),
            metric("DERIVED", "rms", ["stable", "shifted"], "sqrt(sum_sq / count)"),
            metric("DRIFT", "rms_delta", ["shifted"], "{{current_df}}.rms - {{base_df}}.rms"),
        ],
    )
    refresh = wait_for(lambda: ended(w, table), timeout=180, interval=0.5)
    assert refresh.state == MonitorRefreshInfoState.SUCCESS, refresh.message
    got = sql_rows(w, f"SELECT CAST(window.start AS DATE), sum_sq, rms FROM {table}_profile_metrics "
                      f"WHERE column_name = 'stable' AND log_type = 'INPUT' ORDER BY 1")
    want = sql_rows(w, f"SELECT CAST(date_trunc('DAY', ts) AS DATE), sum(stable * stable), sqrt(avg(stable * stable)) "
                       f"FROM {table} GROUP BY 1 ORDER BY 1")
    assert [r[0] for r in got] == [r[0] for r in want] and len(got) == 7
    for (_, s, rms), (_, s2, rms2) in zip(got, want):
        assert abs(float(s) - float(s2)) < 1e-6 * float(s2) and abs(float(rms) - float(rms2)) < 1e-6
    shares = sql_rows(w, f"SELECT red_share, sum_sq FROM {table}_profile_metrics WHERE column_name = ':table' "
                         f"AND log_type = 'INPUT' ORDER BY window.start")
    assert float(shares[-1][0]) > 0.8 and 0.3 < float(shares[0][0]) < 0.4 and shares[0][1] is None
    base = sql_rows(w, f"SELECT sum_sq FROM {table}_profile_metrics WHERE column_name = 'shifted' AND log_type = 'BASELINE'")
    assert float(base[0][0]) > 0
    drift = sql_rows(w, f"SELECT CAST(window.start AS DATE), rms_delta FROM {table}_drift_metrics "
                        f"WHERE column_name = 'shifted' AND drift_type = 'BASELINE' ORDER BY 1")
    assert float(drift[0][1]) < 5 and float(drift[-1][1]) > 30, drift
    assert sql_rows(w, f"SELECT count(rms_delta) FROM {table}_drift_metrics WHERE column_name = 'stable'")[0][0] == "0"

    # An appended day: the sketches read only its rows, the custom aggregates cover every row again.
    sql_rows(w, f"INSERT INTO {table} SELECT id + 20160, ts + INTERVAL 7 DAYS, stable, shifted, color, kind "
                f"FROM ({EVENTS}) WHERE id < 2880")
    again = refresh_now(w, table)
    assert again.message.startswith("Incremental refresh") and read_counts(again.message)[1] == 2880, again.message
    got = sql_rows(w, f"SELECT sum_sq, rms FROM {table}_profile_metrics WHERE column_name = 'stable' "
                      f"AND log_type = 'INPUT' ORDER BY window.start")
    want = sql_rows(w, f"SELECT sum(stable * stable) FROM {table} WHERE id >= 20160")
    assert len(got) == 8 and abs(float(got[-1][0]) - float(want[0][0])) < 1e-6 * float(want[0][0])
    assert len(sql_rows(w, f"SELECT 1 FROM {table}_drift_metrics WHERE column_name = 'shifted' "
                           f"AND drift_type = 'BASELINE' AND rms_delta IS NOT NULL")) == 8
    w.quality_monitors.delete(table)


def test_bad_custom_metrics_are_refused(w, tables):
    table, _ = tables

    def create(*metrics):
        w.quality_monitors.create(table_name=table, assets_dir="/x", output_schema_name="main.default",
                                  snapshot=MonitorSnapshot(), custom_metrics=list(metrics))

    with pytest.raises(InvalidParameterValue, match="must aggregate"):
        create(metric("AGGREGATE", "m", ["stable"], "{{input_column}} + 1"))
    with pytest.raises(InvalidParameterValue, match="nope"):
        create(metric("AGGREGATE", "m", ["stable"], "avg(nope)"))
    with pytest.raises(InvalidParameterValue, match="'missing'"):
        create(metric("AGGREGATE", "m", ["missing"], "avg({{input_column}})"))
    with pytest.raises(InvalidParameterValue, match="Unknown custom metric type"):
        w.api_client.do("POST", f"/api/2.1/unity-catalog/tables/{table}/monitor", body={
            "output_schema_name": "main.default", "assets_dir": "/x", "snapshot": {},
            "custom_metrics": [{"type": "CUSTOM_METRIC_TYPE_MEDIAN", "name": "m", "input_columns": ["stable"],
                                "definition": "avg(stable)", "output_data_type": DOUBLE}]})
    with pytest.raises(InvalidParameterValue, match="not_a_metric"):
        create(metric("DERIVED", "d", ["stable"], "not_a_metric * 2"))
    with pytest.raises(InvalidParameterValue, match="cannot be used here"):
        create(metric("DERIVED", "d", ["stable"], "{{current_df}}.avg"))
    struct = json.dumps({"name": "output", "type": {"type": "struct", "fields": []}, "nullable": True, "metadata": {}})
    with pytest.raises(NotImplemented):
        create(MonitorMetric(type=MonitorMetricType.CUSTOM_METRIC_TYPE_AGGREGATE, name="s", input_columns=["stable"],
                             definition="avg({{input_column}})", output_data_type=struct))
    with pytest.raises(InvalidParameterValue, match="free column name"):
        create(metric("AGGREGATE", "count", ["stable"], "avg({{input_column}})"))


def test_monitor_calls_need_privileges_on_the_table(tarn, w, tables):
    """SELECT on the table reads its monitor; its owner or MANAGE changes it."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import PermissionDenied
    from databricks.sdk.service.catalog import PermissionsChange, Privilege

    _, baseline = tables
    user = "monitor-reader@example.com"
    other = WorkspaceClient(host=tarn.url, token=tarn.cli_token(user), auth_type="pat")
    with pytest.raises(PermissionDenied):
        other.quality_monitors.create(table_name=baseline, assets_dir="/x", output_schema_name="main.default",
                                      snapshot=MonitorSnapshot())
    w.quality_monitors.create(table_name=baseline, assets_dir="/x", output_schema_name="main.default",
                              snapshot=MonitorSnapshot())
    try:
        with pytest.raises(PermissionDenied):
            other.quality_monitors.get(baseline)
        assert tarn.raw("GET", f"/api/2.1/unity-catalog/tables/{baseline}/monitor/report",
                        token=tarn.cli_token(user)).status_code == 403
        w.grants.update("catalog", "main", changes=[PermissionsChange(principal=user, add=[Privilege.USE_CATALOG])])
        w.grants.update("schema", "main.default",
                        changes=[PermissionsChange(principal=user, add=[Privilege.USE_SCHEMA])])
        w.grants.update("table", baseline, changes=[PermissionsChange(principal=user, add=[Privilege.SELECT])])
        assert other.quality_monitors.get(baseline).table_name == baseline
        other.quality_monitors.list_refreshes(baseline)
        for change in (lambda: other.quality_monitors.run_refresh(baseline),
                       lambda: other.quality_monitors.delete(baseline)):
            with pytest.raises(PermissionDenied):
                change()
        # The monitor is untouched by the refused calls.
        assert w.quality_monitors.get(baseline).table_name == baseline
    finally:
        w.quality_monitors.delete(baseline)
