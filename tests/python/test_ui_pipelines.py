"""The pipelines and monitors pages in headless Chromium: a pipeline with
expectations run through databricks-sdk, its dataset graph, flows,
expectations, event log and update history checked against what
`w.pipelines` reports; Start clicked in the browser; a quality monitor's
charts per column and refresh history."""

import io
import json

import pytest
import requests
from databricks.sdk import errors
from databricks.sdk.service.catalog import MonitorRefreshInfoState, MonitorTimeSeries, VolumeType
from databricks.sdk.service.pipelines import FileLibrary, PipelineLibrary
from databricks.sdk.service.workspace import ImportFormat

from conftest import wait_for
from test_monitors import ended, event_tables
from test_pipelines import finish, lines

LANDING = "/Volumes/main/uip/landing/orders"
SOURCE = f'''import dlt
from pyspark.sql.functions import col, count

@dlt.table(comment="Orders as they land")
def ui_raw():
    return spark.readStream.format("cloudFiles").option("cloudFiles.format", "json").load("{LANDING}/")

@dlt.table(comment="Orders with a customer")
@dlt.expect("positive_amount", "amount > 0")
@dlt.expect_or_drop("has_customer", "customer_id IS NOT NULL")
def ui_clean():
    return dlt.read_stream("ui_raw").select(col("customer_id"), col("amount").cast("double"))

@dlt.table(comment="Orders per customer")
def ui_totals():
    return dlt.read("ui_clean").groupBy("customer_id").agg(count("*").alias("orders"))
'''
# One order without a customer (dropped), one with a negative amount (kept, counted as failed).
ORDERS = [
    {"customer_id": "c1", "amount": "10.0"},
    {"customer_id": "c1", "amount": "30.0"},
    {"customer_id": "c2", "amount": "5.0"},
    {"customer_id": None, "amount": "7.0"},
    {"customer_id": "c2", "amount": "-5.0"},
    {"customer_id": "c3", "amount": "100.0"},
]
DATASETS = ["main.uip.ui_raw", "main.uip.ui_clean", "main.uip.ui_totals"]


def events_of(w, pipeline_id, update_id):
    """The update's events as the REST API answers them (with `details`), newest first."""
    body = w.api_client.do("GET", f"/api/2.0/pipelines/{pipeline_id}/events",
                           query={"max_results": 100, "filter": f"update_id='{update_id}'"})
    return body["events"]


def completed(events):
    """Each flow's COMPLETED progress, by flow name."""
    return {e["origin"]["flow_name"]: e["details"]["flow_progress"] for e in events
            if e["event_type"] == "flow_progress" and e["details"]["flow_progress"]["status"] == "COMPLETED"}


@pytest.fixture(scope="module")
def ran(w):
    """The pipeline and its first update, finished."""
    try:
        w.schemas.create(name="uip", catalog_name="main")
    except errors.ResourceAlreadyExists:
        pass
    w.volumes.create(catalog_name="main", schema_name="uip", name="landing", volume_type=VolumeType.MANAGED)
    w.files.upload(f"{LANDING}/part-0001.json", lines(ORDERS))
    me = w.current_user.me().user_name
    path = f"/Users/{me}/ui_pipelines/orders.py"
    w.workspace.mkdirs(f"/Users/{me}/ui_pipelines")
    w.workspace.upload(path, io.BytesIO(SOURCE.encode()), format=ImportFormat.RAW, overwrite=True)
    created = w.pipelines.create(name="ui-orders", catalog="main", schema="uip", development=True,
                                 libraries=[PipelineLibrary(file=FileLibrary(path=path))])
    pipeline_id = created.pipeline_id
    update_id = w.pipelines.start_update(pipeline_id).update_id
    assert finish(w, pipeline_id, update_id) == "COMPLETED", [
        e.message for e in w.pipelines.list_pipeline_events(pipeline_id)]
    return pipeline_id, update_id


def test_the_list_links_each_pipeline_with_its_states(browser, w, ran):
    pipeline_id, update_id = ran
    browser.open("/pipelines")
    row = browser.wait(f'tr[data-pipeline="{pipeline_id}"]')
    cells = [td.text for td in row.find_elements("css selector", "td")]
    assert cells[0] == "ui-orders" and cells[1] == "IDLE"
    assert cells[2].startswith("COMPLETED")
    assert cells[3] == w.current_user.me().user_name
    link = row.find_element("css selector", "td a").get_attribute("href")
    assert link.endswith(f"/pipelines/{pipeline_id}")
    latest = row.find_elements("css selector", "td a")[1].get_attribute("href")
    assert latest.endswith(f"/pipelines/{pipeline_id}/updates/{update_id}")
    browser.open("/pipelines?name=no-such-name")
    browser.wait_text("No pipelines.")
    browser.open("/pipelines?name=ui-ord")
    browser.wait(f'tr[data-pipeline="{pipeline_id}"]')
    browser.shot("pipelines-list")


def test_the_graph_flows_and_expectations_match_the_event_log(browser, w, ran):
    pipeline_id, update_id = ran
    events = events_of(w, pipeline_id, update_id)
    progress = completed(events)
    browser.open(f"/pipelines/{pipeline_id}")
    browser.wait('#update-flows g.node[data-node="main.uip.ui_totals"]')
    nodes = {n.get_attribute("data-node"): n.get_attribute("data-state") for n in browser.all("g.node")}
    assert nodes == {d: "COMPLETED" for d in DATASETS}
    assert browser.one("#update-flows").get_attribute("data-live") == "false"
    clean = progress["ui_clean"]
    assert clean["data_quality"]["dropped_records"] == 1
    rows = {tr.get_attribute("data-flow"): (tr.find_element("css selector", "td.rows").text,
                                            tr.find_element("css selector", "td.dropped").text)
            for tr in browser.all("table.flows tbody tr")}
    for flow, p in progress.items():
        assert rows[flow][0] == str(p["metrics"]["num_output_rows"]), (flow, rows)
    assert rows["ui_clean"] == (str(clean["metrics"]["num_output_rows"]), "1")
    # The node's detail line says the same.
    failed = sum(e["failed_records"] for e in clean["data_quality"]["expectations"])
    detail = browser.one('g.node[data-node="main.uip.ui_clean"] text.detail').text
    assert detail == f'{clean["metrics"]["num_output_rows"]} rows · 1 dropped · {failed} failed'
    shown = {tr.get_attribute("data-expectation"): (int(tr.find_element("css selector", "td.passed").text),
                                                   int(tr.find_element("css selector", "td.failed").text))
             for tr in browser.all("table.expectations tbody tr")}
    expected = {e["name"]: (e["passed_records"], e["failed_records"]) for e in clean["data_quality"]["expectations"]}
    assert shown == expected and all(p > 0 for p, _ in shown.values())
    # The event log: the update's events, newest first.
    logged = [(tr.get_attribute("data-event-type"), tr.get_attribute("data-level"))
              for tr in browser.all("table.events tbody tr")]
    assert logged == [(e["event_type"], e["level"]) for e in events][:50]
    assert "flow_definition" in [t for t, _ in logged] and len(logged) >= 10
    # The update history.
    history = browser.one(f'table.updates tr[data-update="{update_id}"]').text
    assert "COMPLETED" in history and "API_CALL" in history and "no" in history
    browser.shot("pipelines-graph")
    # The same update by its own address; a node links to its table.
    browser.open(f"/pipelines/{pipeline_id}/updates/{update_id}")
    browser.wait('g.node[data-node="main.uip.ui_raw"]')
    href = browser.one('g.node[data-node="main.uip.ui_raw"]').find_element("xpath", "..").get_dom_attribute("href")
    assert href.endswith("/explore/data/main/uip/ui_raw")


def test_start_in_the_browser_starts_an_update(browser, w, ran):
    pipeline_id, first = ran
    browser.open(f"/pipelines/{pipeline_id}")
    button = browser.wait('#update-flows button[hx-post$="/start"]')
    button.click()
    # The action answers with the new update's page.
    browser.wait_until(lambda: "/updates/" in browser.path and first not in browser.path, timeout=20)
    update_id = browser.path.rsplit("/", 1)[1]
    # Shown as soon as it is queued, the update's regions poll while it runs.
    assert browser.one("#update-flows").get_attribute("data-live") == "true"
    updates = [u.update_id for u in w.pipelines.list_updates(pipeline_id).updates]
    assert updates[:2] == [update_id, first]
    assert w.pipelines.get_update(pipeline_id, update_id).update.cause.value == "USER_ACTION"
    assert finish(w, pipeline_id, update_id) == "COMPLETED"
    # The live region follows the update to its end, then stops polling.
    browser.wait_until(lambda: browser.one("#update-flows").get_attribute("data-live") == "false", timeout=20)
    assert browser.one("#update-flows span.badge").text == "IDLE"
    assert len(browser.all("g.node")) == 3
    browser.shot("pipelines-update")
    # The history page lists both.
    browser.open(f"/pipelines/{pipeline_id}/updates")
    ids = [tr.get_attribute("data-update") for tr in browser.all("table.updates tbody tr")]
    assert ids[:2] == [update_id, first]


def test_actions_need_htmx_and_pages_need_a_level(tarn, w, ran):
    pipeline_id, _ = ran
    plain = tarn.raw("POST", f"/pipelines/{pipeline_id}/start")
    assert plain.status_code == 400
    other = tarn.cli_token("ui-stranger@example.com")
    page = tarn.raw("GET", f"/pipelines/{pipeline_id}", token=other)
    assert page.status_code == 403
    assert pipeline_id not in tarn.raw("GET", "/pipelines", token=other).text
    refused = tarn.raw("POST", f"/pipelines/{pipeline_id}/start", token=other, headers={"HX-Request": "true"})
    assert refused.status_code == 403
    # Full refresh (behind a confirm in the browser) as htmx sends it.
    full = tarn.raw("POST", f"/pipelines/{pipeline_id}/full-refresh", headers={"HX-Request": "true"})
    assert full.status_code == 204
    update_id = full.headers["HX-Location"].rsplit("/", 1)[1]
    assert w.pipelines.get_update(pipeline_id, update_id).update.full_refresh is True
    assert finish(w, pipeline_id, update_id) == "COMPLETED"
    row = tarn.raw("GET", f"/pipelines/{pipeline_id}").text
    assert f'data-update="{update_id}"' in row


@pytest.fixture(scope="module")
def monitored(tarn, w):
    table, baseline = event_tables(w, "main.default.uim_events", "main.default.uim_base")
    w.quality_monitors.create(table_name=table, assets_dir="/Workspace/Users/admin/monitors",
                              output_schema_name="main.default", baseline_table_name=baseline,
                              time_series=MonitorTimeSeries(timestamp_col="ts", granularities=["1 day"]))
    refresh = wait_for(lambda: ended(w, table), timeout=180, interval=1)
    assert refresh.state == MonitorRefreshInfoState.SUCCESS, refresh.message
    yield table
    w.quality_monitors.delete(table)


def chart_data(browser):
    return [json.loads(f.get_attribute("data-chart")) for f in browser.all("figure.chart")]


def test_monitors_list_and_a_column_charted(browser, tarn, w, monitored):
    table = monitored
    browser.open("/monitors")
    row = browser.wait(f'tr[data-table="{table}"]')
    text = row.text
    assert "Time series · 1 day" in text and "ACTIVE" in text and "SUCCESS" in text
    browser.shot("monitors-list")

    browser.open(f"/monitors/{table}?column=shifted")
    browser.wait("figure.chart canvas")
    charts = chart_data(browser)
    assert [c["title"] for c in charts] == ["Rows and nulls · shifted", "Values · shifted",
                                            "Drift (KS statistic) · shifted"]
    rows = charts[0]["series"][0]["y"]
    assert len(rows) >= 6 and sum(rows) == 20000
    baseline_ks = [v for v in charts[2]["series"][0]["y"] if v is not None]
    assert max(baseline_ks) > 0.4
    refreshes = [tr.get_attribute("data-refresh") for tr in browser.all("table.refreshes tbody tr")]
    assert refreshes == ["1"] and "SUCCESS" in browser.text("table.refreshes")
    report = browser.one("a.report").get_attribute("href")
    assert tarn.raw("GET", report.removeprefix(tarn.url)).status_code == 200

    # Another column through the selector.
    browser.script("document.getElementById('column').value = 'color'")
    browser.one("form.columns button").click()
    browser.wait_until(lambda: "column=color" in browser.path)
    browser.wait("figure.chart canvas")
    assert [c["title"] for c in chart_data(browser)][1:] == ["Distinct values · color", "Drift (JS distance) · color"]
    assert browser.one("div.charts").get_attribute("data-column") == "color"
    browser.shot("monitors-table")

    # Refresh from the page: a second refresh, shown once it ends.
    browser.one('button[hx-post$="/refresh"]').click()
    wait_for(lambda: len(w.quality_monitors.list_refreshes(table).refreshes) == 2, timeout=20)
    assert wait_for(lambda: ended(w, table), timeout=180, interval=1).state == MonitorRefreshInfoState.SUCCESS
    browser.wait_until(lambda: len(browser.all("table.refreshes tbody tr")) == 2
                       and "RUNNING" not in browser.text("table.refreshes")
                       and "PENDING" not in browser.text("table.refreshes"), timeout=20)
    bogus = requests.get(f"{tarn.url}/monitors/{table}?column=nope", timeout=10)
    assert bogus.status_code == 200 and "does not profile a column" in bogus.text


def test_monitors_need_select_on_their_table(tarn, monitored):
    other = tarn.cli_token("ui-stranger@example.com")
    assert tarn.raw("GET", f"/monitors/{monitored}", token=other).status_code == 403
    assert monitored not in tarn.raw("GET", "/monitors", token=other).text
    refused = tarn.raw("POST", f"/monitors/{monitored}/refresh", token=other, headers={"HX-Request": "true"})
    assert refused.status_code == 403
