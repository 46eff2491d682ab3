"""Quality monitors through `databricks-sdk`'s `w.quality_monitors`: a
time-series monitor with a baseline on a table written through the SQL
warehouse, whose drift metrics find the column that shifted and not the
one that did not; an inference-log monitor with quality metrics per model;
and the refusals."""

import pytest
from databricks.sdk.errors import InvalidParameterValue, NotFound, NotImplemented
from databricks.sdk.service.catalog import (
    MonitorInferenceLog,
    MonitorInferenceLogProblemType,
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


@pytest.fixture(scope="module")
def tables(tarn, w):
    sql_rows(w, f"CREATE OR REPLACE TABLE main.default.mon_events AS {EVENTS}")
    sql_rows(w, "CREATE OR REPLACE TABLE main.default.mon_base AS SELECT * FROM main.default.mon_events WHERE id < 5000")
    return "main.default.mon_events", "main.default.mon_base"


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
    )
    refresh = wait_for(lambda: ended(w, table), timeout=180, interval=1)
    assert refresh.state == MonitorRefreshInfoState.SUCCESS, refresh.message
    rows = sql_rows(w, "SELECT model_version, sum(count), min(accuracy_score), max(accuracy_score) "
                       "FROM main.default.mon_preds_profile_metrics WHERE column_name = ':table' "
                       "GROUP BY model_version ORDER BY model_version")
    by_model = {r[0]: (int(r[1]), float(r[2]), float(r[3])) for r in rows}
    assert by_model["0"][0] == 10000 and by_model["0"][1] == 1.0
    assert by_model["1"][0] == 10000 and 0.4 < by_model["1"][2] < 0.6
    assert by_model["*"][0] == 20000
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
