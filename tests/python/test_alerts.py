"""Databricks SQL alerts through `databricks-sdk`: a saved query and an
alert on it (`w.queries`, `w.alerts`) evaluated by a job's `sql_task.alert`;
a scheduled alert (`w.alerts_v2`) on a quality monitor's drift metrics that
fires to a webhook when a column drifts and stays quiet for one that does
not; and the refusals."""

import pytest
from databricks.sdk.errors import InvalidParameterValue, NotFound
from databricks.sdk.service import jobs, settings, sql
from databricks.sdk.service.catalog import MonitorRefreshInfoState, MonitorTimeSeries

from conftest import wait_for
from test_monitors import EVENTS, ended
from test_pipelines import sql_rows


def destination(w, webhook, name):
    config = settings.Config(generic_webhook=settings.GenericWebhookConfig(url=webhook.url))
    return w.notification_destinations.create(display_name=name, config=config).id


def evaluate_by_job(w, alert_id, destination_id):
    (warehouse,) = list(w.warehouses.list())
    task = jobs.SubmitTask(
        task_key="check",
        sql_task=jobs.SqlTask(
            warehouse_id=warehouse.id,
            alert=jobs.SqlTaskAlert(alert_id=alert_id,
                                    subscriptions=[jobs.SqlTaskSubscription(destination_id=destination_id)]),
        ),
    )
    run = w.jobs.submit(run_name="alert check", tasks=[task]).result()
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state.state_message
    return w.alerts.get(alert_id)


def test_an_alert_on_a_saved_query_fires_from_a_job_and_recovers(w, webhook):
    sql_rows(w, "CREATE OR REPLACE TABLE main.default.alert_source AS SELECT 0.9 AS drift")
    (warehouse,) = list(w.warehouses.list())
    query = w.queries.create(query=sql.CreateQueryRequestQuery(
        display_name="max drift", warehouse_id=warehouse.id,
        query_text="SELECT max(drift) AS drift FROM main.default.alert_source"))
    assert w.queries.get(query.id).query_text.startswith("SELECT max(drift)")
    alert = w.alerts.create(alert=sql.CreateAlertRequestAlert(
        display_name="drift too high", query_id=query.id, notify_on_ok=True,
        custom_subject="{{ALERT_NAME}} is {{ALERT_STATUS}}",
        condition=sql.AlertCondition(
            op=sql.AlertOperator.GREATER_THAN,
            operand=sql.AlertConditionOperand(column=sql.AlertOperandColumn(name="drift")),
            threshold=sql.AlertConditionThreshold(value=sql.AlertOperandValue(double_value=0.5)))))
    assert alert.state == sql.AlertState.UNKNOWN
    assert alert.id in [a.id for a in w.alerts.list()]
    hook = destination(w, webhook, "alerts")

    fired = evaluate_by_job(w, alert.id, hook)
    assert fired.state == sql.AlertState.TRIGGERED and fired.trigger_time
    post = wait_for(lambda: webhook.posts and webhook.posts[0])
    assert post["event_type"] == "alert.triggered"
    assert post["alert"]["id"] == alert.id and post["query_result_value"] == "0.9"

    # Still above the threshold: no second notice without seconds_to_retrigger.
    assert evaluate_by_job(w, alert.id, hook).state == sql.AlertState.TRIGGERED
    sql_rows(w, "CREATE OR REPLACE TABLE main.default.alert_source AS SELECT 0.1 AS drift")
    assert evaluate_by_job(w, alert.id, hook).state == sql.AlertState.OK
    wait_for(lambda: len(webhook.posts) >= 2)
    assert [p["event_type"] for p in webhook.posts] == ["alert.triggered", "alert.ok"]

    renamed = w.alerts.update(alert.id, "display_name", alert=sql.UpdateAlertRequestAlert(display_name="drift"))
    assert renamed.display_name == "drift" and renamed.query_id == query.id
    w.alerts.delete(alert.id)
    assert alert.id not in [a.id for a in w.alerts.list()]
    assert w.alerts.get(alert.id).lifecycle_state == sql.LifecycleState.TRASHED


def test_a_scheduled_alert_on_drift_metrics_fires_for_the_drifted_column_only(w, webhook):
    table = "main.default.alert_events"
    sql_rows(w, f"CREATE OR REPLACE TABLE {table} AS {EVENTS}")
    sql_rows(w, f"CREATE OR REPLACE TABLE main.default.alert_base AS SELECT * FROM {table} WHERE id < 5000")
    w.quality_monitors.create(
        table_name=table, assets_dir="/Workspace/Users/admin/monitors", output_schema_name="main.default",
        time_series=MonitorTimeSeries(timestamp_col="ts", granularities=["1 day"]),
        baseline_table_name="main.default.alert_base")
    refresh = wait_for(lambda: ended(w, table), timeout=180, interval=1)
    assert refresh.state == MonitorRefreshInfoState.SUCCESS, refresh.message
    hook = destination(w, webhook, "drift-alerts")

    (warehouse,) = list(w.warehouses.list())

    def drift_alert(column, schedule=sql.CronSchedule(quartz_cron_schedule="* * * * * ?", timezone_id="UTC")):
        return sql.AlertV2(
            display_name=f"{column} drifted", warehouse_id=warehouse.id,
            query_text=f"SELECT window.start AS day, ks_test.statistic AS ks FROM {table}_drift_metrics "
                       f"WHERE column_name = '{column}' AND drift_type = 'BASELINE'",
            evaluation=sql.AlertV2Evaluation(
                source=sql.AlertV2OperandColumn(name="ks", aggregation=sql.Aggregation.MAX),
                comparison_operator=sql.ComparisonOperator.GREATER_THAN,
                threshold=sql.AlertV2Operand(value=sql.AlertV2OperandValue(double_value=0.3)),
                notification=sql.AlertV2Notification(
                    subscriptions=[sql.AlertV2Subscription(destination_id=hook)])),
            schedule=schedule)

    shifted = w.alerts_v2.create_alert(drift_alert("shifted"))
    stable = w.alerts_v2.create_alert(drift_alert("stable"))
    post = wait_for(lambda: webhook.posts and webhook.posts[0], timeout=60)
    assert post["event_type"] == "alert.triggered" and post["alert"]["id"] == shifted.id
    assert float(post["query_result_value"]) > 0.4

    def state(alert_id):
        return w.alerts_v2.get_alert(alert_id).evaluation.state

    wait_for(lambda: state(stable.id) == sql.AlertEvaluationState.OK, timeout=30)
    assert state(shifted.id) == sql.AlertEvaluationState.TRIGGERED
    assert w.alerts_v2.get_alert(shifted.id).evaluation.last_evaluated_at
    assert [p["alert"]["id"] for p in webhook.posts] == [shifted.id]
    assert {a.id for a in w.alerts_v2.list_alerts()} >= {shifted.id, stable.id}

    paused = sql.CronSchedule(quartz_cron_schedule="* * * * * ?", timezone_id="UTC",
                              pause_status=sql.SchedulePauseStatus.PAUSED)
    for alert, column in ((shifted, "shifted"), (stable, "stable")):
        updated = w.alerts_v2.update_alert(alert.id, drift_alert(column, paused), update_mask="schedule")
        assert updated.schedule.pause_status == sql.SchedulePauseStatus.PAUSED
        w.alerts_v2.trash_alert(alert.id)
    assert w.alerts_v2.get_alert(shifted.id).lifecycle_state == sql.AlertLifecycleState.DELETED


def test_refusals(w):
    condition = sql.AlertCondition(
        op=sql.AlertOperator.GREATER_THAN,
        operand=sql.AlertConditionOperand(column=sql.AlertOperandColumn(name="x")),
        threshold=sql.AlertConditionThreshold(value=sql.AlertOperandValue(double_value=1)))
    with pytest.raises(NotFound):
        w.alerts.create(alert=sql.CreateAlertRequestAlert(display_name="a", query_id="nope", condition=condition))
    with pytest.raises(NotFound):
        w.alerts.get("nope")
    with pytest.raises(NotFound):
        w.queries.get("nope")
    query = w.queries.create(query=sql.CreateQueryRequestQuery(display_name="q", query_text="SELECT 1 AS x"))
    no_threshold = sql.AlertCondition(op=sql.AlertOperator.GREATER_THAN, operand=condition.operand)
    with pytest.raises(InvalidParameterValue, match="threshold"):
        w.alerts.create(alert=sql.CreateAlertRequestAlert(display_name="a", query_id=query.id, condition=no_threshold))
    with pytest.raises(InvalidParameterValue, match="update_mask"):
        w.queries.update(query.id, "", query=sql.UpdateQueryRequestQuery(query_text="SELECT 2 AS x"))
    with pytest.raises(InvalidParameterValue, match="query_text"):
        w.queries.create(query=sql.CreateQueryRequestQuery(display_name="empty"))

    (warehouse,) = list(w.warehouses.list())

    def v2(**changes):
        alert = dict(
            display_name="v2", query_text="SELECT 1 AS x", warehouse_id=warehouse.id,
            evaluation=sql.AlertV2Evaluation(source=sql.AlertV2OperandColumn(name="x"),
                                             comparison_operator=sql.ComparisonOperator.IS_NULL),
            schedule=sql.CronSchedule(quartz_cron_schedule="0 0 * * * ?", timezone_id="UTC"))
        alert.update(changes)
        return w.alerts_v2.create_alert(sql.AlertV2(**alert))

    with pytest.raises(InvalidParameterValue, match="quartz"):
        v2(schedule=sql.CronSchedule(quartz_cron_schedule="every hour", timezone_id="UTC"))
    with pytest.raises(InvalidParameterValue, match="destination"):
        v2(evaluation=sql.AlertV2Evaluation(
            source=sql.AlertV2OperandColumn(name="x"), comparison_operator=sql.ComparisonOperator.IS_NULL,
            notification=sql.AlertV2Notification(subscriptions=[sql.AlertV2Subscription(destination_id="nope")])))
    with pytest.raises(NotFound, match="warehouse"):
        v2(warehouse_id="nope")
    hourly = v2()
    assert hourly.evaluation.state == sql.AlertEvaluationState.UNKNOWN
    w.alerts_v2.trash_alert(hourly.id, purge=True)
    with pytest.raises(NotFound):
        w.alerts_v2.get_alert(hourly.id)
