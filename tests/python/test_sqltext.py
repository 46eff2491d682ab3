"""The worker's SQL splitting (`split_sql` in python/tarn/kernel.py) against
the case table the Rust scanner (crates/tarn-sqltext) runs too. No server."""

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CASES = json.loads((REPO / "crates/tarn-sqltext/cases.json").read_text(encoding="utf-8"))["cases"]


def load_kernel():
    spec = importlib.util.spec_from_file_location("tarn_kernel", REPO / "python/tarn/kernel.py")
    kernel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kernel)
    return kernel


kernel = load_kernel()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_split_sql_follows_the_case_table(case):
    sql = case["sql"]
    assert kernel.split_sql(sql) == case["statements"]
    if "tokens" in case:
        listed = [
            [kind, sql[start:end]] + ([] if closed else ["unclosed"])
            for kind, start, end, closed in kernel.sql_tokens(sql)
            if kind != "Whitespace"
        ]
        assert listed == case["tokens"]
    assert "".join(sql[start:end] for _, start, end, _ in kernel.sql_tokens(sql)) == sql
