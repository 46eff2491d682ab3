"""The serving worker's fast path for plain numeric tables
(`python/tarn/serving.py`'s `NumericTables`) builds exactly the DataFrame
MLflow's own parser builds, dtypes included, and hands anything else back
to MLflow."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.pyfunc import scoring_server
from mlflow.types.schema import ColSpec, Schema

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python" / "tarn"))
import serving  # noqa: E402

SCHEMA = Schema([ColSpec("double", "a"), ColSpec("float", "b"), ColSpec("long", "c"), ColSpec("integer", "d")])


class Request:
    def __init__(self, body, content_type="application/json"):
        self.body = json.dumps(body).encode()
        self.content_type = content_type


def fast_frame(body, content_type="application/json"):
    tables = serving.NumericTables.of(SCHEMA)
    rows = tables.rows(Request(body, content_type))
    return tables.frame(*rows) if rows else None


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, 2.5, 3, 4], [1.25, -0.1, 2**40, -7]]}},
    {"dataframe_split": {"columns": ["d", "c", "b", "a"], "data": [[1, 2, 3, 4]]}},
    {"dataframe_records": [{"a": 1.5, "b": 2, "c": 3, "d": 4}, {"a": 0.1, "b": 0.2, "c": -3, "d": 40}]},
])
def test_plain_tables_parse_as_mlflow_parses_them(body):
    pd.testing.assert_frame_equal(fast_frame(body), scoring_server.infer_and_parse_data(body, SCHEMA),
                                  check_exact=True)
    assert fast_frame(body, "application/json; charset=utf-8") is not None


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[True, 2.5, 3, 4]]}},
    {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, 2.5, 3.5, 4]]}},
    {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[None, 2.5, 3, 4]]}},
    {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2.5, 3]]}},
    {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, 2.5, 3, 2**40]]}},
    {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, 2, 3, 4]], "index": [7]}},
    {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, 2, 3, 4]]}, "params": {"k": 1}},
    {"instances": [{"a": 1, "b": 2, "c": 3, "d": 4}]},
])
def test_anything_else_goes_to_mlflow(body):
    assert fast_frame(body) is None


def test_only_numeric_named_schemas_take_the_fast_path():
    assert serving.NumericTables.of(Schema([ColSpec("string", "s"), ColSpec("double", "a")])) is None
    assert serving.NumericTables.of(None) is None


@pytest.mark.parametrize("kind", ["double", "float"])
def test_one_float_type_builds_one_matrix_as_mlflow_would(kind):
    schema = Schema([ColSpec(kind, "x"), ColSpec(kind, "y")])
    tables = serving.NumericTables.of(schema)
    body = {"dataframe_split": {"columns": ["y", "x"], "data": [[1, 2.5], [0.1, -3]]}}
    frame = tables.frame(*tables.rows(Request(body)))
    pd.testing.assert_frame_equal(frame, scoring_server.infer_and_parse_data(body, schema), check_exact=True)
    with_bool = {"dataframe_split": {"columns": ["x", "y"], "data": [[True, 2.5]]}}
    assert tables.frame(*tables.rows(Request(with_bool))) is None
