"""`import dlt`: the Python API pipelines are defined with, for tarn.

This module owns the surface users write against: the decorators and
functions of Databricks' `dlt` module (`table`, `view`, `expect*`,
`create_streaming_table`, `append_flow`, `apply_changes`, `read`, ...), the
same names on `pyspark.pipelines` (so `from pyspark import pipelines as dp`
works, with Databricks' additions), and turning their arguments into plain
definitions. What the definitions mean is `pipeline.py`'s business: while
`pipeline.analyze` runs, it is the active analysis and every call here
registers with it. Outside an analysis (a notebook that imports `dlt`),
decorators return the function unchanged and `read` reads the table.
"""

import sys

__all__ = [
    "table",
    "materialized_view",
    "view",
    "temporary_view",
    "create_streaming_table",
    "append_flow",
    "apply_changes",
    "create_auto_cdc_flow",
    "apply_changes_from_snapshot",
    "create_auto_cdc_from_snapshot_flow",
    "create_sink",
    "expect",
    "expect_or_drop",
    "expect_or_fail",
    "expect_all",
    "expect_all_or_drop",
    "expect_all_or_fail",
    "read",
    "read_stream",
]

STREAMING_TABLE = "streaming_table"
MATERIALIZED_VIEW = "materialized_view"
VIEW = "view"

# The analysis in progress (a `pipeline.Analysis`), or None.
_analysis = None


def start_analysis(analysis):
    global _analysis
    _analysis = analysis


def end_analysis():
    global _analysis
    _analysis = None


# -- datasets -----------------------------------------------------------------


def table(
    query_function=None,
    *,
    name=None,
    comment=None,
    spark_conf=None,
    table_properties=None,
    path=None,
    partition_cols=None,
    cluster_by=None,
    cluster_by_auto=None,
    schema=None,
    row_filter=None,
    temporary=False,
    private=None,
    format=None,
):
    """A table and the flow that fills it: a streaming table when the query
    reads a stream, else a materialized view."""
    settings = table_settings(comment, table_properties, partition_cols, cluster_by, schema)
    return dataset_decorator(query_function, name, None, settings)


def materialized_view(
    query_function=None,
    *,
    name=None,
    comment=None,
    spark_conf=None,
    table_properties=None,
    path=None,
    partition_cols=None,
    cluster_by=None,
    cluster_by_auto=None,
    schema=None,
    row_filter=None,
    private=None,
    format=None,
):
    settings = table_settings(comment, table_properties, partition_cols, cluster_by, schema)
    return dataset_decorator(query_function, name, MATERIALIZED_VIEW, settings)


def view(query_function=None, *, name=None, comment=None, spark_conf=None):
    """A view: not stored; the flows that read it read its query."""
    return dataset_decorator(query_function, name, VIEW, {"comment": comment})


temporary_view = view


def create_streaming_table(
    name,
    comment=None,
    spark_conf=None,
    table_properties=None,
    partition_cols=None,
    cluster_by=None,
    cluster_by_auto=None,
    path=None,
    schema=None,
    expect_all=None,
    expect_all_or_drop=None,
    expect_all_or_fail=None,
    row_filter=None,
    format=None,
):
    """A streaming table without a flow of its own: `append_flow` and
    `apply_changes` write it."""
    if _analysis is None:
        return
    expectations = (
        expectation_list(expect_all, "warn")
        + expectation_list(expect_all_or_drop, "drop")
        + expectation_list(expect_all_or_fail, "fail")
    )
    settings = table_settings(comment, table_properties, partition_cols, cluster_by, schema)
    _analysis.define_dataset(name, STREAMING_TABLE, settings, expectations, None, caller_location())


def dataset_decorator(query_function, name, kind, settings):
    """`@decorator` and `@decorator(...)` alike: registers a dataset and its
    flow, both named after the function unless `name` is given. The function
    comes back unchanged, so expectation decorators can sit above."""
    if isinstance(query_function, str):
        name, query_function = query_function, None
    location = caller_location()

    def register(func):
        if _analysis is not None:
            dataset_name = name or func.__name__
            _analysis.define_dataset(dataset_name, kind, settings, [], func, location)
            _analysis.define_flow(dataset_name, dataset_name, func, location)
        return func

    return register if query_function is None else register(query_function)


def table_settings(comment, table_properties, partition_cols, cluster_by, schema):
    return {
        "comment": comment,
        "table_properties": dict(table_properties or {}),
        "partition_cols": name_list(partition_cols),
        "cluster_by": name_list(cluster_by),
        "schema": schema_ddl(schema),
    }


# -- flows --------------------------------------------------------------------


def append_flow(target=None, name=None, once=False, comment=None, spark_conf=None):
    """A flow that appends its query's rows to `target`."""
    if not isinstance(target, str):
        raise TypeError("append_flow needs the name of its target: @dlt.append_flow(target='...')")
    location = caller_location()

    def register(func):
        if _analysis is not None:
            _analysis.define_flow(name or func.__name__, target, func, location, once=bool(once))
        return func

    return register


def apply_changes(
    target,
    source,
    keys,
    sequence_by,
    where=None,
    ignore_null_updates=False,
    apply_as_deletes=None,
    apply_as_truncates=None,
    column_list=None,
    except_column_list=None,
    stored_as_scd_type=1,
    track_history_column_list=None,
    track_history_except_column_list=None,
    flow_name=None,
    name=None,
    once=False,
):
    """An AUTO CDC flow: applies the change events read (as a stream) from
    `source` to the streaming table `target`."""
    if _analysis is None:
        return
    cdc = {
        "source": source,
        "keys": column_names(keys),
        "sequence_by": column_sql(sequence_by),
        "apply_as_deletes": optional_sql(apply_as_deletes),
        "apply_as_truncates": optional_sql(apply_as_truncates),
        "column_list": optional_names(column_list),
        "except_column_list": optional_names(except_column_list),
        "stored_as_scd_type": scd_type(stored_as_scd_type),
        "track_history_column_list": optional_names(track_history_column_list),
        "track_history_except_column_list": optional_names(track_history_except_column_list),
        "ignore_null_updates": bool(ignore_null_updates),
    }
    flow = flow_name or name or target
    _analysis.define_cdc_flow(flow, target, cdc, optional_sql(where), caller_location(), once=bool(once))


create_auto_cdc_flow = apply_changes


def apply_changes_from_snapshot(*args, **kwargs):
    raise NotImplementedError("tarn pipelines do not support AUTO CDC from snapshots yet")


create_auto_cdc_from_snapshot_flow = apply_changes_from_snapshot


def create_sink(name, format, options=None):
    """Sinks are not supported: a flow that writes one fails at definition."""
    if _analysis is not None:
        _analysis.define_sink(name)


def scd_type(value):
    if str(value) not in ("1", "2"):
        raise ValueError(f"stored_as_scd_type must be 1 or 2, not {value!r}")
    return int(value)


# -- expectations -------------------------------------------------------------


def expect(name, constraint):
    return expectation_decorator([expectation(name, constraint, "warn")])


def expect_or_drop(name, constraint):
    return expectation_decorator([expectation(name, constraint, "drop")])


def expect_or_fail(name, constraint):
    return expectation_decorator([expectation(name, constraint, "fail")])


def expect_all(expectations):
    return expectation_decorator(expectation_list(expectations, "warn"))


def expect_all_or_drop(expectations):
    return expectation_decorator(expectation_list(expectations, "drop"))


def expect_all_or_fail(expectations):
    return expectation_decorator(expectation_list(expectations, "fail"))


def expectation(name, constraint, action):
    return {"name": str(name), "condition": column_sql(constraint), "action": action}


def expectation_list(expectations, action):
    return [expectation(name, constraint, action) for name, constraint in (expectations or {}).items()]


def expectation_decorator(expectations):
    """Decorators apply bottom-up, so each puts its expectations in front:
    the dataset gets them in the order they are written, top to bottom,
    whether they sit above or below the dataset's decorator."""

    def attach(func):
        func._tarn_expectations = expectations + expectations_of(func)
        return func

    return attach


def expectations_of(func):
    return list(getattr(func, "_tarn_expectations", []))


# -- reading ------------------------------------------------------------------


def read(name):
    """The dataset `name` of this pipeline, read in full."""
    if _analysis is None:
        return active_session().read.table(name)
    return _analysis.read_dataset(name, streaming=False)


def read_stream(name):
    """The dataset `name` of this pipeline, read as a stream."""
    if _analysis is None:
        return active_session().readStream.table(name)
    return _analysis.read_dataset(name, streaming=True)


def active_session():
    from pyspark.sql.connect.session import SparkSession

    return SparkSession.getActiveSession()


# -- arguments ----------------------------------------------------------------


def caller_location():
    """Path and line of the user code that called into this module."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    if frame is None:
        return {"path": "", "line": None}
    return {"path": frame.f_code.co_filename, "line": frame.f_lineno}


def name_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def schema_ddl(schema):
    """A declared schema as DDL (`a INT, b STRING NOT NULL`)."""
    if schema is None or isinstance(schema, str):
        return schema
    fields = []
    for field in schema.fields:
        ddl = f"{quote(field.name)} {field.dataType.simpleString()}"
        if not field.nullable:
            ddl += " NOT NULL"
        comment = (field.metadata or {}).get("comment")
        if comment:
            ddl += " COMMENT " + sql_string(comment)
        fields.append(ddl)
    return ", ".join(fields)


def column_names(columns):
    if isinstance(columns, str) or not hasattr(columns, "__iter__"):
        columns = [columns]
    return [column_name(c) for c in columns]


def optional_names(columns):
    return None if columns is None else column_names(columns)


def column_name(column):
    if isinstance(column, str):
        return column
    expr = getattr(column, "_expr", None)
    if type(expr).__name__ == "ColumnReference":
        return expr._unparsed_identifier
    raise TypeError(f"expected a column name or col('name'), not {column!r}")


def optional_sql(value):
    return None if value is None else column_sql(value)


def column_sql(value):
    """SQL text of a condition or expression given as a string or a Column."""
    if isinstance(value, str):
        return value
    expr = getattr(value, "_expr", None)
    if expr is None:
        raise TypeError(f"expected a SQL expression string or a Column, not {value!r}")
    return expression_sql(expr)


# Spark Connect's names for operators, and their SQL.
BINARY_OPERATORS = {
    "==": "=",
    "<=>": "<=>",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "+": "+",
    "-": "-",
    "*": "*",
    "/": "/",
    "%": "%",
    "and": "AND",
    "or": "OR",
}


def expression_sql(expr):
    kind = type(expr).__name__
    if kind == "ColumnReference":
        return expr._unparsed_identifier
    if kind == "SQLExpression":
        return expr._expr
    if kind == "LiteralExpression":
        return literal_sql(expr._value)
    if kind == "ColumnAlias":
        return expression_sql(expr._child)
    if kind == "CastExpression":
        data_type = expr._data_type if isinstance(expr._data_type, str) else expr._data_type.simpleString()
        return f"CAST({expression_sql(expr._expr)} AS {data_type})"
    if kind == "UnresolvedFunction":
        return function_sql(expr._name, [expression_sql(a) for a in expr._args], expr._is_distinct)
    raise TypeError(f"cannot turn the Column {expr!r} into SQL; give the expression as a string")


def function_sql(name, args, distinct):
    if name in BINARY_OPERATORS and len(args) == 2:
        return f"({args[0]} {BINARY_OPERATORS[name]} {args[1]})"
    if name == "in" and args:
        return f"({args[0]} IN ({', '.join(args[1:])}))"
    if name == "not" and len(args) == 1:
        return f"(NOT {args[0]})"
    if name == "negative" and len(args) == 1:
        return f"(- {args[0]})"
    prefix = "DISTINCT " if distinct else ""
    return f"{name}({prefix}{', '.join(args)})"


def literal_sql(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return sql_string(str(value))


def sql_string(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote(name):
    return "`" + name.replace("`", "``") + "`"


def install_into_pyspark_pipelines():
    """`from pyspark import pipelines as dp` gets these functions: the
    Databricks superset of pyspark's, which registers with tarn's analysis."""
    try:
        import pyspark.pipelines as module
    except ImportError:
        return
    this = sys.modules[__name__]
    for attr in __all__:
        setattr(module, attr, getattr(this, attr))


install_into_pyspark_pipelines()
