"""The Catalog Explorer and the SQL editor in headless Chromium, over a
schema, a Delta table and a volume made through databricks-sdk."""

import io
import time

import pytest
import requests
from databricks.sdk.service.catalog import PermissionsChange, Privilege, VolumeType
from databricks.sdk.service.sql import StatementState

CATALOG, SCHEMA, TABLE, VOLUME = "ui_cat", "sales", "orders", "landing"
FULL = f"{CATALOG}.{SCHEMA}.{TABLE}"
TABLE_PAGE = f"/explore/data/{CATALOG}/{SCHEMA}/{TABLE}"
VOLUME_PAGE = f"/explore/data/volumes/{CATALOG}/{SCHEMA}/{VOLUME}"
CSV = b"id,city\n1,Oslo\n2,Lima\n"


def sql(w, warehouse_id, statement):
    r = w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse_id, wait_timeout="50s")
    assert r.status.state == StatementState.SUCCEEDED, (statement, r.status)
    return r


@pytest.fixture(scope="module")
def warehouse_id(w):
    (warehouse,) = list(w.warehouses.list())
    return warehouse.id


@pytest.fixture(scope="module")
def objects(w, warehouse_id):
    """A schema with a three-version Delta table and a volume holding a file."""
    w.catalogs.create(name=CATALOG, comment="UI test catalog")
    w.schemas.create(name=SCHEMA, catalog_name=CATALOG, comment="Orders and more")
    sql(w, warehouse_id, f"CREATE TABLE {FULL} (id BIGINT, city STRING) USING DELTA")
    sql(w, warehouse_id, f"COMMENT ON TABLE {FULL} IS 'One row per order'")
    sql(w, warehouse_id, f"INSERT INTO {FULL} VALUES (1, 'Oslo'), (2, 'Lima')")
    sql(w, warehouse_id, f"INSERT INTO {FULL} VALUES (3, 'Pune')")
    w.volumes.create(catalog_name=CATALOG, schema_name=SCHEMA, name=VOLUME, volume_type=VolumeType.MANAGED)
    w.files.upload(f"/Volumes/{CATALOG}/{SCHEMA}/{VOLUME}/in/cities.csv", io.BytesIO(CSV), overwrite=True)
    w.files.upload(f"/Volumes/{CATALOG}/{SCHEMA}/{VOLUME}/readme.txt", io.BytesIO(b"hello"), overwrite=True)
    yield
    w.catalogs.delete(CATALOG, force=True)


def rows(browser, css):
    """The text of each cell of each body row of the table at `css`."""
    return [[td.text for td in tr.find_elements("css selector", "td")] for tr in browser.all(f"{css} tbody tr")]


def test_catalogs_schemas_and_a_schema_s_tables_and_volumes(browser, objects):
    browser.open("/explore/data")
    browser.wait(f"table.objects tr[data-name='{CATALOG}']")
    assert "UI test catalog" in browser.text(f"tr[data-name='{CATALOG}']")
    assert browser.one("nav.sidenav a.active").text == "Catalog"
    browser.shot("catalog-catalogs")

    browser.one(f"tr[data-name='{CATALOG}'] a").click()
    browser.wait(f"tr[data-name='{SCHEMA}']")
    assert browser.path == f"/explore/data/{CATALOG}"
    assert "Orders and more" in browser.text(f"tr[data-name='{SCHEMA}']")
    browser.one(f"tr[data-name='{SCHEMA}'] a").click()

    browser.wait(f"tr[data-name='{TABLE}']")
    assert browser.one(f"tr[data-name='{TABLE}'] a").get_attribute("href").endswith(TABLE_PAGE)
    assert "One row per order" in browser.text(f"tr[data-name='{TABLE}']")
    browser.shot("catalog-schema")
    browser.one("nav.tabs a[href$='?tab=volumes']").click()
    browser.wait(f"tr[data-name='{VOLUME}']")
    assert browser.one(f"tr[data-name='{VOLUME}'] a").get_attribute("href").endswith(VOLUME_PAGE)
    assert browser.all(f"tr[data-name='{TABLE}']") == []


def test_tables_page_on_the_server(browser, objects, w, warehouse_id):
    for i in range(3):
        sql(w, warehouse_id, f"CREATE TABLE {CATALOG}.{SCHEMA}.extra_{i} (x INT) USING DELTA")
    browser.open(f"/explore/data/{CATALOG}/{SCHEMA}?limit=2")
    browser.wait("table.objects")
    assert [r[0] for r in rows(browser, "table.objects")] == ["extra_0", "extra_1"]
    browser.one("nav.pager a[rel=next]").click()
    browser.wait_until(lambda: "offset=2" in browser.path)
    assert [r[0] for r in rows(browser, "table.objects")] == ["extra_2", TABLE]
    assert browser.all("nav.pager a[rel=next]") == []


def test_table_overview(browser, objects):
    browser.open(TABLE_PAGE)
    browser.wait("table.columns")
    assert browser.one("nav.tabs a.active").text == "Overview"
    assert "One row per order" in browser.text("p.comment")
    columns = {r[0]: r for r in rows(browser, "table.columns")}
    assert columns["id"][1].lower() in ("bigint", "long") and columns["city"][1].lower() == "string"
    facts = browser.text("dl.facts")
    assert "MANAGED" in facts and "DELTA" in facts.upper() and "file://" in facts
    browser.shot("catalog-table-overview")
    browser.one("a.button[href^='/sql/editor']").click()
    browser.wait("textarea.code")
    assert browser.one("textarea.code").get_attribute("value") == f"SELECT * FROM `{CATALOG}`.`{SCHEMA}`.`{TABLE}` LIMIT 100"


def test_table_sample_data(browser, objects):
    browser.open(f"{TABLE_PAGE}?tab=sample")
    browser.wait("#sample table.result", timeout=120)
    assert [th.text for th in browser.all("#sample table.result th")] == ["id", "city"]
    assert sorted(rows(browser, "#sample table.result")) == [["1", "Oslo"], ["2", "Lima"], ["3", "Pune"]]
    browser.shot("catalog-table-sample")


def test_table_history(browser, objects):
    browser.open(f"{TABLE_PAGE}?tab=history")
    browser.wait("table.history")
    history = rows(browser, "table.history")
    versions = [r[0] for r in history]
    assert versions[:1] == [max(versions, key=int)] and "0" in versions and len(versions) >= 3
    operations = {r[0]: r[2] for r in history}
    assert operations["0"] == "CREATE TABLE"
    assert list(operations.values()).count("WRITE") >= 2
    latest = history[0]
    assert latest[3] == "mode: Append" and latest[4] != ""
    browser.shot("catalog-table-history")


def test_table_permissions_and_quality_tabs(browser, objects):
    browser.open(f"{TABLE_PAGE}?tab=permissions")
    browser.wait("div.tab p")
    browser.open(f"{TABLE_PAGE}?tab=quality")
    browser.wait_text("no quality monitor", "div.tab")


def test_volume_files_and_download(browser, objects, tarn):
    browser.open(VOLUME_PAGE)
    browser.wait("table.files")
    files = {r[0]: r for r in rows(browser, "table.files")}
    assert set(files) == {"in/", "readme.txt"}
    assert files["readme.txt"][1] == "5 B" and files["readme.txt"][2].startswith("20")
    browser.shot("catalog-volume")
    link = browser.one("tr[data-name='readme.txt'] a.download").get_attribute("href")
    assert requests.get(link, timeout=10).content == b"hello"
    browser.one("tr[data-name='in'] a").click()
    browser.wait("tr[data-name='cities.csv']")
    assert browser.path == f"{VOLUME_PAGE}?path=in"
    assert "in" in browser.text("p.path")


def test_a_viewer_sees_only_what_uc_grants_show(tarn, objects, w):
    user = "ui-catalog-reader@example.com"
    headers = {"Authorization": f"Bearer {tarn.cli_token(user)}"}

    def get(path):
        return requests.get(f"{tarn.url}{path}", headers=headers, timeout=10)

    assert f'data-name="{CATALOG}"' not in get("/explore/data").text
    assert get(TABLE_PAGE).status_code == 403
    assert get(f"{VOLUME_PAGE}/download?path=readme.txt").status_code == 403

    w.grants.update("catalog", CATALOG, changes=[PermissionsChange(principal=user, add=[Privilege.USE_CATALOG])])
    w.grants.update("schema", f"{CATALOG}.{SCHEMA}",
                    changes=[PermissionsChange(principal=user, add=[Privilege.USE_SCHEMA])])
    w.grants.update("table", FULL, changes=[PermissionsChange(principal=user, add=[Privilege.SELECT])])
    assert f'data-name="{CATALOG}"' in get("/explore/data").text
    schema = get(f"/explore/data/{CATALOG}/{SCHEMA}").text
    assert f'data-name="{TABLE}"' in schema and 'data-name="extra_0"' not in schema
    assert "One row per order" in get(TABLE_PAGE).text
    assert f'data-name="{VOLUME}"' not in get(f"/explore/data/{CATALOG}/{SCHEMA}?tab=volumes").text


def test_a_schema_s_models(browser, objects, w):
    w.registered_models.create(catalog_name=CATALOG, schema_name=SCHEMA, name="churn", comment="Who leaves")
    browser.open(f"/explore/data/{CATALOG}/{SCHEMA}?tab=models")
    browser.wait("tr[data-name='churn']")
    assert browser.one("tr[data-name='churn'] a").get_attribute("href").endswith(f"/ml/models/{FULL.rsplit('.', 1)[0]}.churn")
    assert "Who leaves" in browser.text("tr[data-name='churn']")


def run_in_editor(browser, statement):
    browser.open("/sql/editor")
    browser.wait("textarea.code")
    box = browser.one("textarea.code")
    box.clear()
    box.send_keys(statement)
    browser.one("#run").click()


def test_sql_editor_runs_a_query(browser, objects):
    statement = f"SELECT id, upper(city) AS city FROM {FULL} WHERE id < 3 ORDER BY id"
    run_in_editor(browser, statement)
    browser.wait("#result table.result", timeout=120)
    assert [th.text for th in browser.all("#result th")] == ["id", "city"]
    assert rows(browser, "#result table.result") == [["1", "OSLO"], ["2", "LIMA"]]
    assert browser.text("#row-count") == "2 rows"
    # The page did not reload: the statement is still in the editor.
    assert browser.one("textarea.code").get_attribute("value") == statement
    browser.shot("sql-editor-result")


def test_sql_editor_shows_the_engine_s_error(browser, objects):
    run_in_editor(browser, f"SELECT * FROM {CATALOG}.{SCHEMA}.no_such_table")
    browser.wait("#result pre.error", timeout=120)
    assert "no_such_table" in browser.text("#result pre.error")
    assert browser.one("textarea.code").get_attribute("value").endswith("no_such_table")
    browser.shot("sql-editor-error")


def test_editor_run_is_an_action(tarn):
    refused = requests.post(f"{tarn.url}/sql/editor/run", data={"statement": "SELECT 1"}, timeout=10)
    assert refused.status_code == 400
    started = time.time()
    answer = requests.post(f"{tarn.url}/sql/editor/run", data={"statement": "SELECT 40 + 2 AS n"},
                           headers={"HX-Request": "true"}, timeout=120)
    assert answer.status_code == 200 and "<td>42</td>" in answer.text and time.time() - started < 120
