"""The compute pages, home and costs in headless Chromium, over a real
cluster made through databricks-sdk with a job task run on it (so usage
records exist): the clusters list, a cluster's facts, events, engine log and
usage, Terminate pressed in the browser, the warehouse, home and the costs
page with its right-sizing table."""

import base64
import datetime
import re
import uuid

import pytest
import requests
from databricks.sdk.service import jobs, workspace
from databricks.sdk.service.compute import State

from conftest import wait_for

SPARK_VERSION = "16.4.x-scala2.13"
WAIT = datetime.timedelta(minutes=4)


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def cluster(w):
    """A RUNNING cluster with one finished job task run on it."""
    c = w.clusters.create_and_wait(cluster_name=unique("ui-compute"), spark_version=SPARK_VERSION, num_workers=1,
                                   autotermination_minutes=45, timeout=WAIT)
    base = f"/Users/{w.current_user.me().user_name}/{unique('ui-compute')}"
    w.workspace.mkdirs(base)
    for name, source in [("busy.py", "import time\ntime.sleep(2)\nprint('busy done')\n"),
                         ("fail.py", "raise ValueError('on purpose')\n")]:
        w.workspace.import_(f"{base}/{name}", content=base64.b64encode(source.encode()).decode(),
                            format=workspace.ImportFormat.AUTO, overwrite=True)

    def job_on_cluster(name, file):
        return w.jobs.create(name=unique(name), tasks=[jobs.Task(
            task_key="t", existing_cluster_id=c.cluster_id,
            spark_python_task=jobs.SparkPythonTask(python_file=f"{base}/{file}"))]).job_id

    c.job_id, c.failing_job_id = job_on_cluster("ui-costs", "busy.py"), job_on_cluster("ui-fails", "fail.py")
    run = w.jobs.run_now_and_wait(c.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    c.failed_run_id = w.jobs.run_now(c.failing_job_id).run_id
    wait_for(lambda: w.jobs.get_run(c.failed_run_id).state.result_state is not None, timeout=120, interval=0.5)
    yield c
    w.jobs.delete(c.job_id)
    w.jobs.delete(c.failing_job_id)
    w.clusters.permanent_delete(c.cluster_id)


def test_compute_lists_the_cluster_and_the_warehouse(browser, cluster):
    browser.open("/compute")
    row = browser.wait(f"table.clusters tr[data-cluster='{cluster.cluster_id}']")
    assert cluster.cluster_name in row.text
    assert row.find_element("css selector", ".badge").get_attribute("data-state") == "RUNNING"
    assert "1 worker" in row.text and SPARK_VERSION in row.text
    link = row.find_element("css selector", "a").get_attribute("href")
    assert link.endswith(f"/compute/clusters/{cluster.cluster_id}")
    warehouse = browser.wait("table.warehouses tr[data-warehouse] a")
    assert "/sql/warehouses/" in warehouse.get_attribute("href")
    assert "Compute" == browser.one("nav.sidenav a.active").text
    browser.shot("compute-list")


def test_cluster_page_shows_facts_events_log_and_usage(browser, cluster):
    browser.open(f"/compute/clusters/{cluster.cluster_id}")
    facts = browser.wait("dl.facts").text
    assert cluster.cluster_id in facts and "after 45 minutes of inactivity" in facts and SPARK_VERSION in facts
    assert browser.one("dl.facts .badge").get_attribute("data-state") == "RUNNING"
    buttons = [b.text for b in browser.all(".toolbar button.action")]
    assert buttons == ["Restart", "Terminate"]
    kinds = [td.text for td in browser.all("table.events td.kind")]
    # Newest first, as the events API pages them.
    assert kinds[0] == "RUNNING" and kinds[-1] == "CREATING"
    assert browser.all("pre.engine-log") or "no log yet" in browser.text()
    usage = browser.one("table.usage tbody tr").text
    assert datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d") in usage
    browser.shot("compute-cluster")


def test_home_shows_the_running_cluster_and_todays_cost(browser, cluster):
    browser.open("/")
    row = browser.wait(f"table.clusters-up tr[data-cluster='{cluster.cluster_id}']")
    assert cluster.cluster_name in row.text and "RUNNING" in row.text
    captions = [c.text for c in browser.all(".cards .card .caption")]
    assert captions == ["clusters up", "job runs in flight", "pipeline updates in flight", "serving endpoints",
                        "estimated cost today"]
    # The job runs finished today, so today's cost is above nothing.
    today = re.search(r"([\d.]+) core-hours over (\d+) task runs", browser.text("p.today"))
    assert today and float(today.group(1)) > 0 and int(today.group(2)) >= 2, browser.text("p.today")
    failed = browser.one(f"table.runs tr[data-run='{cluster.failed_run_id}']")
    assert "FAILED" in failed.text
    href = failed.find_element("css selector", "a").get_attribute("href")
    assert href.endswith(f"/jobs/{cluster.failing_job_id}/runs/{cluster.failed_run_id}")
    browser.shot("home")


def test_costs_show_the_clusters_usage_and_right_sizing(browser, cluster):
    browser.open("/costs")
    usage = browser.wait(f"table.per-cluster tr[data-cluster='{cluster.cluster_id}']").text
    assert cluster.cluster_name in usage
    job_links = [a.get_attribute("href") for a in browser.all("table.per-job a")]
    assert any(h.endswith(f"/jobs/{cluster.job_id}") for h in job_links)
    sizing = browser.one(f"table.right-sizing tr[data-cluster='{cluster.cluster_id}']")
    cells = [td.text for td in sizing.find_elements("css selector", "td")]
    assert cells[0] == cluster.cluster_name and cells[2] == "45 min"
    assert "no CPU utilisation" in browser.text()
    assert len(browser.all("figure.chart")) == 2
    browser.shot("costs")


def test_warehouse_page(browser, w):
    browser.open("/compute")
    browser.wait("table.warehouses tr[data-warehouse] a").click()
    browser.wait("dl.facts")
    warehouse = list(w.warehouses.list())[0]
    assert browser.path == f"/sql/warehouses/{warehouse.id}"
    assert browser.one("dl.facts .badge").get_attribute("data-state") == warehouse.state.value
    buttons = [b.text for b in browser.all(".toolbar button.action")]
    assert buttons == (["Start"] if warehouse.state.value == "STOPPED" else ["Stop"])
    browser.shot("warehouse")


def test_actions_need_htmx(tarn, cluster):
    r = requests.post(f"{tarn.url}/compute/clusters/{cluster.cluster_id}/terminate", timeout=10)
    assert r.status_code == 400 and "HX-Request" in r.text


def test_a_user_without_a_level_sees_neither_the_cluster_nor_its_usage(tarn, cluster):
    token = tarn.cli_token(f"{unique('nobody')}@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    listing = requests.get(f"{tarn.url}/compute", headers=headers, timeout=10)
    assert listing.status_code == 200 and cluster.cluster_id not in listing.text
    page = requests.get(f"{tarn.url}/compute/clusters/{cluster.cluster_id}", headers=headers, timeout=10)
    assert page.status_code == 403
    terminate = requests.post(f"{tarn.url}/compute/clusters/{cluster.cluster_id}/terminate",
                              headers={**headers, "HX-Request": "true"}, timeout=10)
    assert terminate.status_code == 403
    costs = requests.get(f"{tarn.url}/costs", headers=headers, timeout=10)
    assert costs.status_code == 200 and cluster.cluster_id not in costs.text
    home = requests.get(f"{tarn.url}/", headers=headers, timeout=10)
    assert f'data-run="{cluster.failed_run_id}"' not in home.text and cluster.cluster_id not in home.text


def test_terminate_from_the_page(browser, w, cluster):
    browser.open(f"/compute/clusters/{cluster.cluster_id}")
    browser.wait(".toolbar button.action")
    [b for b in browser.all(".toolbar button.action") if b.text == "Terminate"][0].click()
    browser.wait_until(lambda: _alert(browser))
    browser.driver.switch_to.alert.accept()
    browser.wait_until(lambda: w.clusters.get(cluster.cluster_id).state == State.TERMINATED, timeout=60)
    reason = w.clusters.get(cluster.cluster_id).termination_reason
    assert reason.code.value == "USER_REQUEST"

    def shows_terminated():
        browser.open(f"/compute/clusters/{cluster.cluster_id}")
        return browser.wait("dl.facts .badge").get_attribute("data-state") == "TERMINATED"

    browser.wait_until(shows_terminated, timeout=30, interval=1)
    assert [b.text for b in browser.all(".toolbar button.action")] == ["Start"]


def _alert(browser):
    try:
        browser.driver.switch_to.alert
        return True
    except Exception:
        return False
