"""The Workflows pages in headless Chromium: the jobs list with schedules
and recent runs, a job's grid of runs by task, and a run's page whose task
graph updates live while the run goes, with its timeline of attempts, a
failed task's error, Repair and Run now."""

import base64
import datetime
import os
import re
import textwrap
import uuid

import pytest
from databricks.sdk.service import jobs, workspace

from conftest import wait_for

WAIT = datetime.timedelta(minutes=3)
KEYS = ["extract", "clean", "features", "report"]


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def put_file(w, path, source):
    w.workspace.mkdirs(os.path.dirname(path))
    w.workspace.import_(
        path,
        content=base64.b64encode(textwrap.dedent(source).encode()).decode(),
        format=workspace.ImportFormat.AUTO,
        overwrite=True,
    )


def python_task(key, path, depends_on=(), **kw):
    return jobs.Task(
        task_key=key,
        depends_on=[jobs.TaskDependency(task_key=d) for d in depends_on],
        spark_python_task=jobs.SparkPythonTask(python_file=path),
        **kw,
    )


def node_state(browser, key):
    """A graph node's state, read in the page (the live region replaces
    nodes, so no element handle is kept across swaps)."""
    return browser.script(
        "var n = document.querySelector('svg.dag g.node[data-node=\"' + arguments[0] + '\"]');"
        "return n ? n.getAttribute('data-state') : null;", key)


@pytest.fixture(scope="module")
def live_job(w):
    """Four tasks in a diamond that sleep a little, on a paused schedule."""
    base = f"/Users/admin/{unique('ui_jobs')}"
    for key, seconds in zip(KEYS, [1, 2, 2, 1]):
        put_file(w, f"{base}/{key}.py", f"""
            import time
            time.sleep({seconds})
            print("{key} done")
            dbutils.jobs.taskValues.set("rows", {len(key)})
        """)
    name = unique("ui_diamond")
    job = w.jobs.create(
        name=name,
        schedule=jobs.CronSchedule(quartz_cron_expression="0 0 5 * * ?", timezone_id="Europe/Oslo",
                                   pause_status=jobs.PauseStatus.PAUSED),
        parameters=[jobs.JobParameterDefinition(name="day", default="monday")],
        tasks=[
            python_task("extract", f"{base}/extract.py"),
            python_task("clean", f"{base}/clean.py", ["extract"]),
            python_task("features", f"{base}/features.py", ["extract"]),
            python_task("report", f"{base}/report.py", ["clean", "features"]),
        ],
    )
    yield name, job.job_id
    w.jobs.delete(job.job_id)


@pytest.fixture(scope="module")
def failing_job(w, tmp_path_factory):
    """prepare → check → report; check fails (with one retry) until its
    marker file exists."""
    marker = tmp_path_factory.mktemp("ui_jobs") / "fixed"
    base = f"/Users/admin/{unique('ui_fail')}"
    put_file(w, f"{base}/prepare.py", "print('prepared')\n")
    put_file(w, f"{base}/check.py", f"""
        import os
        assert os.path.exists({str(marker)!r}), "the input is not fixed yet"
    """)
    put_file(w, f"{base}/report.py", "print('reported')\n")
    job = w.jobs.create(
        name=unique("ui_fail"),
        tasks=[
            python_task("prepare", f"{base}/prepare.py"),
            python_task("check", f"{base}/check.py", ["prepare"], max_retries=1, min_retry_interval_millis=200),
            python_task("report", f"{base}/report.py", ["check"]),
        ],
    )
    yield job.job_id, marker
    w.jobs.delete(job.job_id)


def test_a_run_page_follows_the_run_live_without_reloading(w, tarn, browser, live_job):
    _, job_id = live_job
    run_id = w.jobs.run_now(job_id, job_parameters={"day": "friday"}).run_id
    page_url = w.jobs.get_run(run_id).run_page_url
    assert page_url == f"{tarn.url}/jobs/{job_id}/runs/{run_id}"
    browser.open(page_url[len(tarn.url):])
    browser.wait('svg.dag g.node[data-node="report"]')
    browser.script("window.__marker = 1")
    first = node_state(browser, "report")
    assert first in ("BLOCKED", "PENDING", "QUEUED", "RUNNING"), first
    assert browser.one("#run-live").get_attribute("data-live") == "true"
    assert {n.get_attribute("data-node") for n in browser.all("svg.dag g.node")} == set(KEYS)
    assert len(browser.all("svg.dag path.edge")) == 4
    browser.wait_until(lambda: node_state(browser, "extract") in ("RUNNING", "SUCCESS"), timeout=60)
    browser.shot("jobs-run-live")
    browser.wait_until(lambda: node_state(browser, "report") == "SUCCESS", timeout=120)
    assert browser.script("return window.__marker") == 1, "the page was reloaded"
    # Once the run ended the region stops polling.
    browser.wait('#run-live[data-live="false"]', timeout=10)
    assert {node_state(browser, k) for k in KEYS} == {"SUCCESS"}
    bars = [b.get_attribute("data-bar") for b in browser.all("svg.gantt g.bar")]
    assert sorted(bars) == sorted(KEYS), bars
    facts = browser.text("dl.facts")
    assert "day=friday" in facts and "ONE_TIME" in facts and "SUCCESS" in facts
    assert browser.all(".toolbar button.action")[-1].text == "Run now"
    assert "Cancel" not in browser.text(".toolbar")
    browser.shot("jobs-run-done")

    # A task's output: its log and the task values it set.
    browser.one('svg.dag a g.node[data-node="features"]').click()
    browser.wait('section.task-output[data-task="features"]')
    assert "features done" in browser.text("pre.logs")
    assert "rows" in browser.text("table.task-values") and "8" in browser.text("table.task-values")
    # A task run's own id shows its job run with that task selected.
    task_run = next(t for t in w.jobs.get_run(run_id).tasks if t.task_key == "clean")
    assert task_run.run_page_url == f"{tarn.url}/jobs/{job_id}/runs/{task_run.run_id}"
    browser.open(f"/jobs/{job_id}/runs/{task_run.run_id}")
    browser.wait('section.task-output[data-task="clean"]')
    assert "clean done" in browser.text("pre.logs")


def test_a_failed_task_shows_its_error_and_repair_reruns_it(w, browser, failing_job):
    job_id, marker = failing_job
    run = w.jobs.run_now_and_wait(job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    browser.open(f"/jobs/{job_id}/runs/{run.run_id}")
    browser.wait("div.failures")
    assert "AssertionError: the input is not fixed yet" in browser.text('div.failures p[data-task="check"]')
    # The failed task is selected: its error and trace are shown.
    browser.wait('section.task-output[data-task="check"]')
    assert "the input is not fixed yet" in browser.text("pre.error-text")
    assert node_state(browser, "check") == "FAILED" and node_state(browser, "report") == "UPSTREAM_FAILED"
    # One bar per attempt: the retry of check has its own; report never started.
    bars = [b.get_attribute("data-bar") for b in browser.all("svg.gantt g.bar")]
    assert bars == ["prepare", "check", "check · attempt 2"], bars
    assert "Cancel" not in browser.text(".toolbar")
    browser.shot("jobs-run-failed")

    marker.touch()
    repair = next(b for b in browser.all(".toolbar button.action") if b.text == "Repair")
    repair.click()

    def repaired():
        r = w.jobs.get_run(run.run_id)
        done = r.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
        return r if r.repair_history and len(r.repair_history) == 2 and done else None

    after = wait_for(repaired, timeout=120, interval=0.5)
    assert after.state.result_state == jobs.RunResultState.SUCCESS
    assert after.repair_history[1].type == jobs.RepairHistoryItemType.REPAIR
    # The page reloaded on the repair and follows it to its end.
    browser.wait_until(lambda: node_state(browser, "report") == "SUCCESS", timeout=60)
    bars = [b.get_attribute("data-bar") for b in browser.all("svg.gantt g.bar")]
    assert "check · attempt 3 (repair)" in bars and "report (repair)" in bars, bars
    assert not browser.all("div.failures")


def test_the_jobs_list_shows_schedules_recent_runs_and_run_now(browser, live_job, failing_job):
    name, job_id = live_job
    browser.open("/jobs")
    row = browser.wait(f'tr[data-job="{job_id}"]')
    assert name in row.text and "admin" in row.text
    assert "0 0 5 * * ?" in row.text and "Europe/Oslo" in row.text and "Paused" in row.text
    squares = row.find_elements("css selector", "td.runs a.sq")
    assert [s.get_attribute("data-state") for s in squares][-1:] == ["SUCCESS"]
    assert f"/jobs/{job_id}/runs/" in squares[-1].get_attribute("href")
    assert "Run now" in row.text
    fail_row = browser.one(f'tr[data-job="{failing_job[0]}"]')
    assert "Manual" in fail_row.text
    browser.shot("jobs-list")
    browser.open(f"/jobs?name={name}")
    browser.wait(f'tr[data-job="{job_id}"]')
    assert len(browser.all("table.jobs > tbody > tr")) == 1


def test_a_job_page_has_a_grid_cell_per_run_and_task(w, browser, live_job):
    name, job_id = live_job
    browser.open(f"/jobs/{job_id}")
    browser.wait("table.runs-grid")
    before = {r.run_id for r in w.jobs.list_runs(job_id=job_id)}
    # Run now from the page: it goes to the new run's page.
    next(b for b in browser.all(".toolbar button.action") if b.text == "Run now").click()
    new = wait_for(lambda: {r.run_id for r in w.jobs.list_runs(job_id=job_id)} - before, timeout=20)
    (run_id,) = new
    browser.wait_until(lambda: browser.path.startswith(f"/jobs/{job_id}/runs/{run_id}"), timeout=20)
    w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=WAIT)

    browser.open(f"/jobs/{job_id}")
    browser.wait("table.runs-grid")
    runs = [int(c.get_attribute("data-run")) for c in browser.all("table.runs-grid thead th.cell")]
    assert len(runs) == 2 and runs[-1] == run_id, "the newest run is on the right"
    cells = browser.all("table.runs-grid td.cell")
    assert len(cells) == 2 * len(KEYS)
    assert {(int(c.get_attribute("data-run")), c.get_attribute("data-task")) for c in cells} == {
        (r, k) for r in runs for k in KEYS}
    link = browser.one(f'table.runs-grid td.cell[data-run="{run_id}"][data-task="clean"] a.sq')
    assert link.get_attribute("data-state") == "SUCCESS"
    assert link.get_attribute("href").endswith(f"/jobs/{job_id}/runs/{run_id}?task=clean")
    assert [r.get_attribute("data-run") for r in browser.all("table.runs tbody tr")] == [str(run_id), str(runs[0])]
    facts = browser.text("dl.facts")
    assert "0 0 5 * * ?" in facts and "Paused" in facts
    assert {t.get_attribute("data-task") for t in browser.all("table.tasks tbody tr")} == set(KEYS)
    assert "monday" in browser.text("main")
    browser.shot("jobs-job-grid")


def test_a_one_time_run_has_its_page(w, tarn, browser, live_job):
    run = w.jobs.submit_and_wait(
        run_name="ui-one-off",
        tasks=[jobs.SubmitTask(task_key="only", spark_python_task=jobs.SparkPythonTask(
            python_file=w.jobs.get(live_job[1]).settings.tasks[0].spark_python_task.python_file))],
        timeout=WAIT,
    )
    assert run.run_page_url == f"{tarn.url}/jobs/runs/{run.run_id}"
    browser.open(f"/jobs/runs/{run.run_id}")
    browser.wait('svg.dag g.node[data-node="only"][data-state="SUCCESS"]')
    assert "ui-one-off" in browser.text("h1")
    # A run is found only at its own path.
    assert tarn.raw("GET", f"/jobs/{live_job[1]}/runs/{run.run_id}").status_code == 404


def test_condition_and_for_each_tasks_show_as_they_ran(w, tarn, browser):
    base = f"/Users/admin/{unique('ui_each')}"
    put_file(w, f"{base}/list.py", "dbutils.jobs.taskValues.set('cities', ['Oslo', 'Bergen', 'Tromso'])\n")
    put_file(w, f"{base}/visit.py", "import sys\nprint('visiting', sys.argv[1])\n")
    nested = jobs.Task(task_key="visit", spark_python_task=jobs.SparkPythonTask(
        python_file=f"{base}/visit.py", parameters=["{{input}}"]))
    job = w.jobs.create(
        name=unique("ui_each"),
        parameters=[jobs.JobParameterDefinition(name="go", default="yes")],
        tasks=[
            python_task("list", f"{base}/list.py"),
            jobs.Task(task_key="gate", depends_on=[jobs.TaskDependency(task_key="list")],
                      condition_task=jobs.ConditionTask(op=jobs.ConditionTaskOp.EQUAL_TO,
                                                        left="{{job.parameters.go}}", right="yes")),
            jobs.Task(task_key="visit_all", depends_on=[jobs.TaskDependency(task_key="gate", outcome="true")],
                      for_each_task=jobs.ForEachTask(inputs="{{tasks.list.values.cities}}", task=nested)),
            jobs.Task(task_key="stay_home", depends_on=[jobs.TaskDependency(task_key="gate", outcome="false")],
                      spark_python_task=jobs.SparkPythonTask(python_file=f"{base}/visit.py", parameters=["home"])),
        ],
    )
    run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    browser.open(f"/jobs/{job.job_id}/runs/{run.run_id}")
    browser.wait('svg.dag g.node[data-node="visit_all"]')
    detail = lambda key: browser.one(f'svg.dag g.node[data-node="{key}"] text.detail').text  # noqa: E731
    assert detail("visit_all") == "3/3 iterations"
    assert detail("gate") == "SUCCESS · true"
    assert node_state(browser, "stay_home") == "EXCLUDED"
    # An iteration's own page is its job run's, the for-each task selected.
    visit_all = next(t for t in run.tasks if t.task_key == "visit_all")
    iteration = w.jobs.get_run(visit_all.run_id).iterations[0]
    browser.open(iteration.run_page_url[len(tarn.url):])
    browser.wait('section.task-output[data-task="visit_all"]')
    w.jobs.delete(job.job_id)


def test_pages_and_actions_check_job_permissions(w, tarn, live_job):
    _, job_id = live_job
    user = f"{unique('dana')}@example.com"
    token = tarn.cli_token(user)
    run_id = next(iter(w.jobs.list_runs(job_id=job_id))).run_id
    page = lambda path: tarn.raw("GET", path, token=token)  # noqa: E731
    act = lambda path: tarn.raw("POST", path, token=token, headers={"HX-Request": "true"})  # noqa: E731

    assert f'data-job="{job_id}"' not in page("/jobs").text
    for path in [f"/jobs/{job_id}", f"/jobs/{job_id}/runs/{run_id}", f"/jobs/{job_id}/runs/{run_id}/dag"]:
        assert page(path).status_code == 403, path
    assert act(f"/jobs/{job_id}/run-now").status_code == 403

    def grant(level):
        w.jobs.update_permissions(str(job_id), access_control_list=[
            jobs.JobAccessControlRequest(user_name=user, permission_level=level)])

    grant(jobs.JobPermissionLevel.CAN_VIEW)
    listed = page("/jobs").text
    assert f'data-job="{job_id}"' in listed and "run-now" not in listed
    run_page = page(f"/jobs/{job_id}/runs/{run_id}")
    assert run_page.status_code == 200 and "/run-now" not in run_page.text and "/cancel" not in run_page.text
    assert "/run-now" not in page(f"/jobs/{job_id}").text
    assert act(f"/jobs/{job_id}/run-now").status_code == 403
    # Actions come from tarn's pages only.
    assert tarn.raw("POST", f"/jobs/{job_id}/run-now", token=token).status_code == 400

    grant(jobs.JobPermissionLevel.CAN_MANAGE_RUN)
    assert "/run-now" in page(f"/jobs/{job_id}").text
    started = act(f"/jobs/{job_id}/run-now")
    assert started.status_code == 204
    new_run = int(started.headers["HX-Location"].rsplit("/", 1)[1])
    assert w.jobs.get_run(new_run).creator_user_name == user
    assert "/cancel" in page(f"/jobs/{job_id}/runs/{new_run}").text
    assert act(f"/jobs/{job_id}/runs/{new_run}/cancel").status_code == 204
    ended = w.jobs.wait_get_run_job_terminated_or_skipped(new_run, timeout=WAIT)
    assert ended.state.result_state == jobs.RunResultState.CANCELED


@pytest.fixture(scope="module")
def crowded():
    """A tarn whose store holds 100,000 job runs (300,000 task runs) of 60
    jobs, the first job's runs the oldest."""
    import json

    from conftest import own_server, store_insert

    for server in own_server("tarn-ui-jobs-crowded-"):
        w = server.client()
        ids = [w.jobs.create(name=f"crowd_{i}", tasks=[
            jobs.Task(task_key=k, spark_python_task=jobs.SparkPythonTask(python_file="/x.py")) for k in "abc"
        ]).job_id for i in range(60)]
        doc = json.dumps({"settings": {"tasks": [{"task_key": k, "spark_python_task": {"python_file": "/x.py"}}
                                                for k in "abc"]}, "trigger": "PERIODIC", "run_name": "crowd"})
        rows, run_id = [], 1_000_000
        for i in range(100_000):
            job = ids[0] if i < 30 else ids[i % 60]
            run_id += 1
            parent = run_id
            at = 1_700_000_000_000 + i
            rows.append((run_id, job, None, None, "JOB_RUN", "TERMINATED", "SUCCESS", "admin", at, at, at + 1000, doc))
            for k in "abc":
                run_id += 1
                rows.append((run_id, job, parent, k, "JOB_RUN", "TERMINATED", "SUCCESS", "admin", at, at, at + 1000,
                             "{}"))
        store_insert(server.home, "job_runs", [
            "run_id", "job_id", "parent_run_id", "task_key", "run_type", "life_cycle_state", "result_state",
            "creator_user_name", "start_time", "execution_start", "end_time", "doc"], rows)
        yield server, ids


def test_pages_page_through_100k_runs(crowded):
    """With 100,000 runs in the store every page answers, a page of runs at
    a time (bench/ui.sh times them)."""
    import requests

    server, ids = crowded
    old_run = 1_000_001
    for path in ["/jobs", f"/jobs/{ids[0]}", f"/jobs/{ids[0]}?offset=25&limit=25", f"/jobs/{ids[-1]}",
                 f"/jobs/{ids[0]}/runs/{old_run}", f"/jobs/{ids[0]}/runs/{old_run}/dag?task=b"]:
        r = requests.get(server.url + path, timeout=30)
        assert r.status_code == 200, (path, r.status_code)
    # A page of 25 runs by 3 tasks; the next page holds the 25 runs before them.
    page = requests.get(server.url + f"/jobs/{ids[0]}", timeout=30).text
    second = requests.get(server.url + f"/jobs/{ids[0]}?offset=25&limit=25", timeout=30).text
    assert page.count('td class="cell"') == second.count('td class="cell"') == 25 * 3
    assert "1–25" in page and "26–50" in second
    runs = lambda html: set(re.findall(r'/jobs/\d+/runs/(\d+)', html))
    assert runs(page) and runs(second) and not runs(page) & runs(second)
