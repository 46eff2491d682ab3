"""The drift report, `GET …/monitor/report`: an HTML page with a section and
two SVG plots per column, fetched with `requests`, then rendered in
headless Chromium, whose DOM must list the drifted columns first and whose
screenshot must show the plots' colours. The screenshot is kept under
pytest's tmp_path; the test prints where."""

import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from databricks.sdk.service.catalog import MonitorRefreshInfoState, MonitorSnapshot, MonitorTimeSeries

from conftest import wait_for
from test_monitors import ended, event_tables

REPORT = "/api/2.1/unity-catalog/tables/{}/monitor/report"
# A categorical column whose values are markup: the page must show them as text.
NOTE = """, CASE WHEN id % 2 = 0 THEN '<b>bold</b> & "q"' ELSE 'plain' END AS note"""
COMPARED = ["id", "stable", "shifted", "color", "kind", "note"]
# The page's colours (report/page.rs): latest window, baseline, drifted point.
NOW, BASELINE, FLAG = (0xF2, 0x8E, 0x2B), (0x4E, 0x79, 0xA7), (0xD6, 0x27, 0x28)


def monitor(w, table, **kind):
    w.quality_monitors.create(table_name=table, assets_dir="/Workspace/Users/admin/monitors",
                              output_schema_name="main.default", **kind)
    refresh = wait_for(lambda: ended(w, table), timeout=180, interval=1)
    assert refresh.state == MonitorRefreshInfoState.SUCCESS, refresh.message


@pytest.fixture(scope="module")
def report(tarn, w):
    table, baseline = event_tables(w, "main.default.rep_events", "main.default.rep_base", extra=NOTE)
    monitor(w, table, time_series=MonitorTimeSeries(timestamp_col="ts", granularities=["1 day"]),
            baseline_table_name=baseline)
    yield table, tarn.raw("GET", REPORT.format(table))
    w.quality_monitors.delete(table)


class Rows(HTMLParser):
    """The summary's rows (column, drifted flag) and the sections' columns, in page order."""

    def __init__(self):
        super().__init__()
        self.rows, self.sections = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-drifted" in a:
            self.rows.append((a["data-column"], a["data-drifted"]))
        if tag == "section" and "data-column" in a:
            self.sections.append(a["data-column"])


def parsed(html):
    rows = Rows()
    rows.feed(html)
    return rows


def test_the_report_has_a_section_and_two_plots_per_column(tarn, report):
    table, r = report
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in r.headers["content-security-policy"]
    page = parsed(r.text)
    assert sorted(c for c, _ in page.rows) == sorted(COMPARED + ["ts"])
    assert page.sections == [c for c, _ in page.rows]
    assert r.text.count("<svg") == 2 * len(COMPARED) == r.text.count("</svg>")
    assert "<b>bold</b>" not in r.text and "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;q&quot;" in r.text
    assert "<script" not in r.text
    assert tarn.raw("GET", REPORT.format(table), token=False).status_code == 401


def test_a_report_needs_a_monitor_and_a_refresh(tarn, w, report):
    r = tarn.raw("GET", REPORT.format("main.default.no_monitor"))
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", r.text
    # A snapshot without baseline: one window, compared with nothing, still a page.
    table = "main.default.rep_snapshot"
    event_tables(w, table, "main.default.rep_snapshot_base")
    monitor(w, table, snapshot=MonitorSnapshot())
    r = tarn.raw("GET", REPORT.format(table))
    assert r.status_code == 200, r.text
    assert {flag for _, flag in parsed(r.text).rows} == {"unknown"}
    w.quality_monitors.delete(table)


def chromium(*args, cwd):
    done = subprocess.run(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", f"--user-data-dir={cwd / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_chromium_shows_the_drifted_columns_first(report, tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not on PATH (scripts/lib.sh installs it)")
    from PIL import Image  # Pillow comes with mlflow (matplotlib).

    _, r = report
    page = tmp_path / "report.html"
    page.write_text(r.text, encoding="utf-8")
    dom = chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    rows = parsed(dom).rows
    flags = dict(rows)
    assert flags["shifted"] == flags["color"] == "true", rows
    assert flags["stable"] == flags["kind"] == "false", rows
    order = [flag for _, flag in rows]
    assert order == sorted(order, key=["true", "false", "unknown"].index), rows

    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri(), cwd=tmp_path)
    print(f"drift report screenshot: {shot}")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2400)
    colours = {c for _, c in image.getcolors(maxcolors=1 << 24)}
    assert len(colours) > 100, "a blank page"
    assert {NOW, BASELINE, FLAG} <= colours, "the plots' lines and drifted points are drawn"
