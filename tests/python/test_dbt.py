"""dbt-databricks against tarn's SQL warehouse: the project under
`dbt_project/` (seeds, a table, a view, incremental models with the `merge` and
`append` strategies, a snapshot, schema tests, docs) run through
databricks-sql-connector's Thrift backend over HTTPS, then its seeds
changed and run again, its tables checked through databricks-sdk's
Statement Execution API.

dbt lives in a venv of its own (`dbt_venv`): its pins conflict with the
test venv's databricks-sdk."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import CACHE, tarn_binary

PROJECT = Path(__file__).parent / "dbt_project"
SCHEMA = "dbt_shop"

# dbt-databricks 1.10 with dbt-core 1.10: the 1.11 line downloads a parser
# from outside the package registries when it installs. databricks-sdk is
# the newest dbt-databricks 1.10.19 accepts (< 0.64).
DBT_PINS = [
    "dbt-core==1.10.19",
    "dbt-databricks==1.10.19",
    "dbt-adapters==1.22.10",
    "dbt-common==1.37.5",
    "dbt-spark==1.9.3",
    "databricks-sql-connector==4.0.5",
    "databricks-sdk==0.63.0",
]


def dbt_venv_path() -> Path:
    digest = hashlib.sha256("\n".join(DBT_PINS).encode()).hexdigest()[:12]
    return CACHE / "venvs" / f"dbt-{digest}"


def ensure_dbt_venv() -> Path:
    """The dbt venv, made on first use (a marker file says it is whole)."""
    venv = dbt_venv_path()
    if (venv / ".ready").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", *DBT_PINS], capture_output=True, text=True, timeout=900
    )
    if pip.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise RuntimeError(pip.stderr[-2000:])
    (venv / ".ready").write_text("\n".join(DBT_PINS) + "\n")
    return venv


@pytest.fixture(scope="module")
def dbt_venv():
    try:
        return ensure_dbt_venv()
    except (RuntimeError, subprocess.SubprocessError) as e:
        pytest.skip(f"dbt could not be installed in a venv: {e}")


class TlsTarn:
    """A `tarn serve --tls` of the module's own: the connector's Thrift
    backend speaks HTTPS only."""

    def __init__(self):
        self.home = Path(tempfile.mkdtemp(prefix="tarn-dbt-"))
        env = dict(os.environ, TARN_HOME=str(self.home), TARN_ENV_DIR=str(CACHE / "envs"),
                   TARN_ML_DEEP_LEARNING="false", RUST_LOG="info,tower_http=warn,deltalake_core=warn")
        self.log = open(self.home / "serve.log", "ab")
        self.proc = subprocess.Popen(
            [tarn_binary(), "serve", "--tls", "--port", "0", "--spark-connect-port", "0"],
            env=env, stdout=subprocess.PIPE, stderr=self.log, cwd=self.home,
        )
        self.url = None
        deadline = time.time() + 60
        while time.time() < deadline and not self.url:
            line = self.proc.stdout.readline().decode()
            if m := re.search(r"https://(?:127\.0\.0\.1|localhost):(\d+)", line):
                self.url, self.port = m.group(0), int(m.group(1))
            elif not line and self.proc.poll() is not None:
                raise RuntimeError((self.home / "serve.log").read_text()[-2000:])
        assert self.url, "tarn did not print its https address"
        self.cert = self.home / "tls" / "cert.pem"
        self.token = (self.home / "token").read_text().strip()

    def client(self):
        from databricks.sdk import WorkspaceClient

        os.environ["REQUESTS_CA_BUNDLE"] = str(self.cert)
        return WorkspaceClient(host=self.url, token=self.token, auth_type="pat")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.log.close()
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE")
    tarn = TlsTarn()
    yield tarn
    tarn.stop()
    if ca_bundle is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = ca_bundle


@pytest.fixture(scope="module")
def tls_w(server):
    return server.client()


@pytest.fixture(scope="module")
def tls_warehouse(tls_w):
    (warehouse,) = list(tls_w.warehouses.list())
    return warehouse.id


@pytest.fixture(scope="module")
def project(server, tls_warehouse):
    """A copy of the project (dbt writes target/ and logs/ into it) and a
    profile that names only what a Databricks user would, plus the port and
    the certificate tarn serves."""
    root = Path(tempfile.mkdtemp(prefix="dbt-project-"))
    shutil.copytree(PROJECT, root / "project", ignore=shutil.ignore_patterns("target", "logs", "changes"))
    (root / "profiles.yml").write_text(
        "tarn:\n"
        "  target: dev\n"
        "  outputs:\n"
        "    dev:\n"
        "      type: databricks\n"
        "      host: 127.0.0.1\n"
        f"      http_path: /sql/1.0/warehouses/{tls_warehouse}\n"
        f"      token: {server.token}\n"
        f"      schema: {SCHEMA}\n"
        "      threads: 2\n"
        "      connection_parameters:\n"
        f"        _port: {server.port}\n"
        f"        _tls_trusted_ca_file: {server.cert}\n"
    )
    yield root
    shutil.rmtree(root, ignore_errors=True)


def dbt(venv: Path, root: Path, *args: str) -> str:
    env = dict(os.environ, DO_NOT_TRACK="1", DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false")
    done = subprocess.run(
        [str(venv / "bin" / "dbt"), *args, "--project-dir", str(root / "project"), "--profiles-dir", str(root)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    if done.returncode != 0:
        log = root / "project" / "logs" / "dbt.log"
        sql = log.read_text()[-8000:] if log.exists() else ""
        pytest.fail(f"dbt {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}\ndbt.log:\n{sql}")
    return done.stdout


def rows(w, warehouse_id, statement, schema=SCHEMA):
    r = w.statement_execution.execute_statement(
        statement=statement, warehouse_id=warehouse_id, catalog="hive_metastore", schema=schema, wait_timeout="50s"
    )
    assert r.status.state.value == "SUCCEEDED", r.status.error
    return [tuple(row) for row in (r.result.data_array or [])]


def test_dbt_project_runs_twice_and_merges(dbt_venv, project, tls_w, tls_warehouse):
    w, warehouse_id = tls_w, tls_warehouse
    # The connector opens its session in the profile's schema.
    rows(w, warehouse_id, f"CREATE SCHEMA IF NOT EXISTS hive_metastore.{SCHEMA}", schema="default")
    assert "All checks passed" in dbt(dbt_venv, project, "debug")
    dbt(dbt_venv, project, "seed")
    dbt(dbt_venv, project, "run")
    dbt(dbt_venv, project, "snapshot")
    tested = dbt(dbt_venv, project, "test")
    assert re.search(r"PASS=9 WARN=0 ERROR=0", tested), tested
    assert rows(w, warehouse_id, "SELECT count(*) FROM customers_current") == [("3",)]
    assert rows(w, warehouse_id, "SELECT customer_id, orders, total FROM customer_totals ORDER BY 1") == [
        ("1", "2", "25.5"), ("2", "1", "12.25"), ("3", "1", "7.75")]
    # persist_docs: the model's description on the table, a column's on the column.
    assert ("customer_id", "bigint", "The customer.") in rows(w, warehouse_id, "DESCRIBE TABLE customer_totals")
    assert w.tables.get(f"main.{SCHEMA}.customer_totals").comment == "Orders and spend per customer."
    # The view model: a view in the catalog, read through the warehouse.
    assert w.tables.get(f"main.{SCHEMA}.gold_customers").table_type.value == "VIEW"
    assert rows(w, warehouse_id, "SELECT customer_id, name FROM gold_customers") == [("1", "Ada")]
    docs_generate_reads_the_catalog(dbt_venv, project)

    for changed in (PROJECT / "changes").glob("*.csv"):
        shutil.copy(changed, project / "project" / "seeds" / changed.name)
    dbt(dbt_venv, project, "seed")
    dbt(dbt_venv, project, "run")
    dbt(dbt_venv, project, "snapshot")
    assert re.search(r"PASS=9 WARN=0 ERROR=0", dbt(dbt_venv, project, "test"))

    # merge: Ada updated in place, Barbara inserted, nobody twice.
    assert rows(w, warehouse_id, "SELECT customer_id, tier FROM customers_current ORDER BY 1") == [
        ("1", "platinum"), ("2", "silver"), ("3", "bronze"), ("4", "gold")]
    # append: only the new order added.
    assert rows(w, warehouse_id, "SELECT order_id FROM order_log ORDER BY 1") == [(str(i),) for i in range(10, 15)]
    # timestamp snapshot: Ada's old row closed, her new one and Barbara's open.
    snap = rows(w, warehouse_id, "SELECT customer_id, tier, dbt_valid_to IS NULL FROM customers_snapshot ORDER BY 1, 3")
    assert snap == [("1", "gold", "false"), ("1", "platinum", "true"), ("2", "silver", "true"),
                    ("3", "bronze", "true"), ("4", "gold", "true")]
    assert rows(w, warehouse_id, "SELECT total FROM customer_totals WHERE customer_id = 4") == [("30.0",)]
    # The view reads the seed as it is now.
    assert rows(w, warehouse_id, "SELECT customer_id, name FROM gold_customers") == [("4", "Barbara")]
    history = rows(w, warehouse_id, "DESCRIBE HISTORY customers_current")
    assert "MERGE" in {h[4] for h in history}


def docs_generate_reads_the_catalog(dbt_venv, project):
    dbt(dbt_venv, project, "docs", "generate")
    catalog = json.loads((project / "project" / "target" / "catalog.json").read_text())
    nodes = catalog["nodes"]
    assert set(nodes["model.tarn_shop.customer_totals"]["columns"]) == {"customer_id", "name", "orders", "total"}
    assert nodes["seed.tarn_shop.customers"]["metadata"]["type"] == "table"
    assert "dbt_valid_to" in nodes["snapshot.tarn_shop.customers_snapshot"]["columns"]


# The statements dbt issues that tarn runs itself, through the Statement
# Execution API on the session server (no Thrift needed).


@pytest.fixture(scope="module")
def warehouse_id(w):
    (warehouse,) = list(w.warehouses.list())
    return warehouse.id


def sql(w, warehouse_id, statement):
    return rows(w, warehouse_id, statement, schema="default")


def test_create_or_replace_table_with_columns(w, warehouse_id):
    sql(w, warehouse_id, "CREATE SCHEMA IF NOT EXISTS main.dbt_replace")
    seed = "main.dbt_replace.seed"
    # Missing: created (the engine's catalog refuses REPLACE).
    create = f"CREATE OR REPLACE TABLE {seed} (`id` bigint NOT NULL, `name` string COMMENT 'who') USING delta"
    sql(w, warehouse_id, create)
    sql(w, warehouse_id, f"INSERT OVERWRITE {seed} VALUES (1, 'a'), (2, 'b')")
    # Existing: the new schema and no rows as its next version, history kept.
    sql(w, warehouse_id, f"CREATE OR REPLACE TABLE {seed} (`id` bigint, `amount` decimal(10,2)) USING delta "
                          "COMMENT 'seeded' TBLPROPERTIES ('delta.appendOnly' = 'false')")
    assert sql(w, warehouse_id, f"SELECT count(*) FROM {seed}") == [("0",)]
    assert [r[:2] for r in sql(w, warehouse_id, f"DESCRIBE TABLE {seed}")] == [
        ("id", "bigint"), ("amount", "decimal(10,2)")]
    sql(w, warehouse_id, f"INSERT INTO {seed} VALUES (3, 1.50)")
    assert sql(w, warehouse_id, f"SELECT id, amount FROM {seed}") == [("3", "1.50")]
    operations = [h[4] for h in sql(w, warehouse_id, f"DESCRIBE HISTORY {seed}")]
    assert len(operations) >= 4 and operations[-1] == "CREATE TABLE"
    assert w.tables.get(seed).comment == "seeded"


def test_show_tblproperties(w, warehouse_id):
    sql(w, warehouse_id, "CREATE SCHEMA IF NOT EXISTS main.dbt_props")
    table = "main.dbt_props.t"
    sql(w, warehouse_id, f"CREATE TABLE {table} USING delta AS SELECT 1 AS id")
    sql(w, warehouse_id, f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.appendOnly' = 'true', 'team' = 'shop')")
    props = dict(sql(w, warehouse_id, f"SHOW TBLPROPERTIES {table}"))
    assert (props["delta.appendOnly"], props["team"]) == ("true", "shop")
    unknown = w.statement_execution.execute_statement(
        statement=f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.noSuchThing' = 'x')", warehouse_id=warehouse_id)
    assert "DELTA_UNKNOWN_CONFIGURATION" in unknown.status.error.message
    assert int(props["delta.minReaderVersion"]) >= 1 and int(props["delta.minWriterVersion"]) >= 2
    assert sql(w, warehouse_id, f"SHOW TBLPROPERTIES {table} ('delta.appendOnly')") == [("delta.appendOnly", "true")]
    (missing,) = sql(w, warehouse_id, f"SHOW TBLPROPERTIES {table} ('nope')")
    assert missing[0] == "nope" and "does not have property" in missing[1]
