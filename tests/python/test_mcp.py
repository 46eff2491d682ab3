"""`tarn mcp` driven by the `mcp` client from PyPI over stdio: the three tools
an assistant uses (list_compute, manage_cluster, execute_code), finding the
workspace from $TARN_HOME and from DATABRICKS_HOST/DATABRICKS_TOKEN."""

import asyncio
import base64
import json
import os
import time
import uuid

import pytest
from conftest import tarn_binary
from databricks.sdk.service.workspace import ImportFormat
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


class Tools:
    """Calls tools on one `tarn mcp` process; each call returns its JSON."""

    def __init__(self, session):
        self.session = session

    async def call(self, name, **arguments):
        result = await self.session.call_tool(name, arguments)
        text = result.content[0].text
        if result.is_error:
            return {"tool_error": text}
        return result.structured_content or json.loads(text)


def run_mcp(env, scenario):
    """Runs `scenario(tools, tool_names)` against a fresh `tarn mcp`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    params = StdioServerParameters(command=tarn_binary(), args=["mcp"], env={**base, **env})

    async def main():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                return await scenario(Tools(session), {t.name for t in listed.tools})

    return asyncio.run(main())


@pytest.fixture(scope="module")
def home_env(tarn):
    return {"TARN_HOME": str(tarn.home)}


def test_tools_manage_a_cluster_and_chain_a_context(tarn, w, home_env):
    table = f"main.default.mcp_{uuid.uuid4().hex[:8]}"

    async def scenario(tools, names):
        assert names == {"list_compute", "manage_cluster", "execute_code"}
        created = await tools.call("manage_cluster", action="create", cluster_name="mcp", num_workers=0)
        cluster_id = created["cluster_id"]
        deadline = time.time() + 180
        while (await tools.call("manage_cluster", action="get", cluster_id=cluster_id))["state"] != "RUNNING":
            assert time.time() < deadline, "cluster did not start"
            await asyncio.sleep(1)
        listed = await tools.call("list_compute", auto_select=True)
        assert cluster_id in [c["cluster_id"] for c in listed["suggestions"]]
        assert all(c["state"] == "TERMINATED" for c in listed["startable_clusters"])

        step1 = await tools.call(
            "execute_code",
            compute_type="auto",
            code=(
                "from pyspark.sql import functions as F\n"
                "rows = [(i, f'2026-11-0{1 + i % 2} {i % 24:02d}:30:00', i * 1.5) for i in range(24)]\n"
                "spark.createDataFrame(rows, 'id int, ts string, v double')"
                ".withColumn('ts', F.to_timestamp('ts')).createOrReplaceTempView('raw')"
            ),
        )
        assert step1["success"] and step1["cluster_id"] == cluster_id and step1["compute_type"] == "cluster"
        context = step1["context_id"]
        step2 = await tools.call(
            "execute_code",
            context_id=context,
            cluster_id=cluster_id,
            code=(
                "agg = spark.sql(\"SELECT DATE_TRUNC('HOUR', ts) AS hour, to_date(ts) AS day, SUM(v) AS total "
                "FROM raw GROUP BY 1, 2\")\nagg.createOrReplaceTempView('agg')\ndisplay(agg.orderBy('hour').limit(3))"
            ),
        )
        assert step2["output"]["columns"] == ["hour", "day", "total"] and len(step2["output"]["rows"]) == 3
        step3 = await tools.call(
            "execute_code",
            context_id=context,
            cluster_id=cluster_id,
            code=f"spark.table('agg').write.partitionBy('day').saveAsTable('{table}')",
        )
        assert step3["success"], step3
        audit = await tools.call(
            "execute_code",
            context_id=context,
            cluster_id=cluster_id,
            code=(
                f"df = spark.table('{table}')\n"
                "display(df.select([F.sum(F.col(c).isNull().cast('int')).alias(c) for c in ['hour', 'day']]))"
            ),
        )
        assert audit["output"]["rows"] == [[0, 0]]
        failed = await tools.call(
            "execute_code", context_id=context, cluster_id=cluster_id, code="raise RuntimeError('no such partition')"
        )
        assert failed["success"] is False
        assert failed["output"]["error"] == "RuntimeError: no such partition"
        assert "Traceback" in failed["output"]["traceback"]

        stopped = await tools.call("manage_cluster", action="stop", cluster_id=cluster_id)
        assert stopped["cluster_id"] == cluster_id
        while (await tools.call("manage_cluster", action="get", cluster_id=cluster_id))["state"] != "TERMINATED":
            await asyncio.sleep(0.5)
        # The cluster's contexts went with its engine.
        gone = await tools.call("execute_code", context_id=context, cluster_id=cluster_id, code="1")
        assert "RESOURCE_DOES_NOT_EXIST" in gone["tool_error"] or "not running" in gone["tool_error"]
        return cluster_id

    cluster_id = run_mcp(home_env, scenario)
    assert w.tables.get(table).columns[1].name == "day"
    w.clusters.permanent_delete(cluster_id)
    w.tables.delete(table)


def test_serverless_notebooks_and_saved_runs(tarn, w, tmp_path):
    table = f"main.default.mcpmig_{uuid.uuid4().hex[:8]}"
    notebook = tmp_path / "migrate.py"
    notebook.write_text(
        "# Databricks notebook source\n"
        "# MAGIC %md\n# MAGIC # Migration\n\n# COMMAND ----------\n\n"
        f"spark.range(2).write.saveAsTable('{table}')\n\n# COMMAND ----------\n\n"
        f"# MAGIC %sql\n# MAGIC ALTER TABLE {table} ADD COLUMNS (label STRING);\n"
        f"# MAGIC COMMENT ON TABLE {table} IS 'from mcp'\n\n# COMMAND ----------\n\n"
        "marker = 'first run'\nspark.table('" + table + "').columns\n"
    )
    ipynb = tmp_path / "check.ipynb"
    ipynb.write_text(
        json.dumps(
            {
                "cells": [
                    {"cell_type": "code", "source": ["n = spark.table('" + table + "').count()\n", "n * 10"],
                     "metadata": {}, "outputs": [], "execution_count": None},
                ],
                "metadata": {"language_info": {"name": "python"}},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    env = {"DATABRICKS_HOST": tarn.url, "DATABRICKS_TOKEN": tarn.token, "TARN_HOME": "/nonexistent"}
    helpers = "# Databricks notebook source\ndef double(x):\n    return 2 * x\n"
    w.workspace.mkdirs("/Users/admin/lib")
    w.workspace.upload("/Users/admin/lib/helpers.py", helpers.encode(), format=ImportFormat.AUTO, overwrite=True)
    uses_run = tmp_path / "uses_run.py"
    uses_run.write_text(
        "# Databricks notebook source\n# MAGIC %run /Users/admin/lib/helpers\n\n# COMMAND ----------\n\ndouble(21)\n"
    )

    async def scenario(tools, _names):
        migrated = await tools.call(
            "execute_code",
            file_path=str(notebook),
            compute_type="serverless",
            destroy_context_on_completion=True,
            workspace_path="/Users/admin/runs/migration",
            run_name="nightly migration",
        )
        assert migrated["success"], migrated
        assert migrated["compute_type"] == "serverless" and migrated["context_id"] is None
        assert [c["language"] for c in migrated["cells"]] == ["markdown", "python", "sql", "python"]
        assert migrated["output"]["text"] == "['id', 'label']"
        fresh = await tools.call("execute_code", compute_type="serverless", code="marker")
        assert fresh["success"] is False and "NameError" in fresh["output"]["error"]
        counted = await tools.call("execute_code", compute_type="serverless", file_path=str(ipynb))
        assert counted["output"]["text"] == "20"
        ran = await tools.call("execute_code", compute_type="serverless", file_path=str(uses_run))
        assert "output" in ran, ran
        assert ran["output"]["text"] == "42" and len(ran["cells"]) == 2, ran
        bad = await tools.call("execute_code", compute_type="serverless")
        assert "one of code and file_path" in bad["tool_error"]
        unknown = await tools.call("execute_code", context_id="999", code="1")
        assert "RESOURCE_DOES_NOT_EXIST" in unknown["tool_error"]

    run_mcp(env, scenario)
    info = w.tables.get(table)
    assert info.comment == "from mcp" and [c.name for c in info.columns] == ["id", "label"]
    saved = w.workspace.export("/Users/admin/runs/migration")
    text = base64.b64decode(saved.content).decode()
    assert "nightly migration" in text and "ALTER TABLE" in text and "['id', 'label']" in text
    w.tables.delete(table)


def test_cli_commands_print_the_same_answers(tarn):
    import subprocess

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}, "TARN_HOME": str(tarn.home)}
    out = subprocess.run(
        [tarn_binary(), "execute", "--compute-type", "serverless", "--code", "print(6 * 7)", "--destroy-context"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["output"]["text"] == "42\n"
    listed = subprocess.run([tarn_binary(), "compute", "--auto-select"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and "suggestions" in json.loads(listed.stdout)
    missing = subprocess.run(
        [tarn_binary(), "compute"], env={**env, "TARN_HOME": "/nonexistent"}, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "DATABRICKS_HOST" in missing.stderr
