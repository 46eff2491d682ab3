"""A quality monitor's quartz `schedule` and `notifications.on_failure`
through `databricks-sdk`: scheduled refreshes start on time (trigger
SCHEDULE) and stop when paused; a refresh that fails (its baseline table
dropped) emails the on-failure addresses through an SMTP server on loopback."""

import time

import pytest
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service.catalog import (
    MonitorCronSchedule,
    MonitorCronSchedulePauseStatus,
    MonitorDestination,
    MonitorNotifications,
    MonitorRefreshInfoTrigger,
    MonitorSnapshot,
)

from conftest import Mailbox, Tarn, wait_for
from test_pipelines import sql_rows


def test_scheduled_refreshes_and_failure_emails(tmp_home):
    smtp = Mailbox()
    mails = smtp.mails
    tarn = Tarn(tmp_home, smtp.env).start()
    try:
        w = tarn.client()
        sql_rows(w, "CREATE TABLE main.default.sched AS SELECT id, CAST(id % 7 AS DOUBLE) AS x FROM range(100)")
        sql_rows(w, "CREATE TABLE main.default.sched_base AS SELECT * FROM main.default.sched")
        every_second = MonitorCronSchedule(quartz_cron_expression="* * * * * ?", timezone_id="UTC")
        notifications = MonitorNotifications(on_failure=MonitorDestination(email_addresses=["oncall@example.com"]))
        with pytest.raises(InvalidParameterValue, match="quartz"):
            w.quality_monitors.create(
                table_name="main.default.sched", assets_dir="/Workspace/m", output_schema_name="main.default",
                snapshot=MonitorSnapshot(), schedule=MonitorCronSchedule(quartz_cron_expression="hourly",
                                                                         timezone_id="UTC"))
        info = w.quality_monitors.create(
            table_name="main.default.sched", assets_dir="/Workspace/m", output_schema_name="main.default",
            snapshot=MonitorSnapshot(), baseline_table_name="main.default.sched_base",
            schedule=every_second, notifications=notifications)
        assert info.schedule.quartz_cron_expression == "* * * * * ?"

        def scheduled():
            refreshes = w.quality_monitors.list_refreshes("main.default.sched").refreshes
            return [r for r in refreshes if r.trigger == MonitorRefreshInfoTrigger.SCHEDULE]

        first = wait_for(scheduled, timeout=60, interval=0.5)[-1]
        assert first.refresh_id > 1
        assert not mails

        sql_rows(w, "DROP TABLE main.default.sched_base")
        wait_for(lambda: mails, timeout=60, interval=0.5)
        recipients, content = mails[0]
        assert recipients == ["oncall@example.com"]
        assert "Monitor refresh failed: main.default.sched" in content

        paused = MonitorCronSchedule(quartz_cron_expression="* * * * * ?", timezone_id="UTC",
                                     pause_status=MonitorCronSchedulePauseStatus.PAUSED)
        w.quality_monitors.update(table_name="main.default.sched", output_schema_name="main.default",
                                  snapshot=MonitorSnapshot(), schedule=paused)
        # Let a refresh that started before the pause end, then count.
        time.sleep(3)
        count = len(scheduled())
        time.sleep(3)
        assert len(scheduled()) == count
    finally:
        tarn.stop()
        smtp.stop()
