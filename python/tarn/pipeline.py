"""Analysis of a pipeline's Python definitions, run in a tarn worker.

tarn runs `pipeline.analyze(REQUEST_JSON)` in a context whose globals hold a
Spark Connect `spark`. This module owns turning Python sources into the
dataflow graph of `crates/tarn-pipelines/src/graph.rs`: it runs each source
with `dlt` (and `pyspark.pipelines`) registering here, then calls each
flow's query function once to get its DataFrame, which is a plan, never run.
Reads of pipeline datasets are resolved while the functions run: a view
becomes its own DataFrame (inlined), a table a read of its full name; each is
recorded as an input, and file streams (Auto Loader, `readStream.format`)
become batch reads plus a recorded file source. The last line printed is
`__TARN_DEFINITIONS__` and the `Definitions` JSON.

Nothing here executes a query: the only engine calls are setting the
pipeline's configuration and what user code does at the top level.
"""

import base64
import json
import linecache
import re
import sys
from dataclasses import dataclass, field

import dlt
from pyspark.pipelines.graph_element_registry import GraphElementRegistry, graph_element_registration_context

MARKER = "__TARN_DEFINITIONS__"

FILE_FORMATS = {"json", "csv", "parquet", "text", "avro", "orc", "xml", "binaryfile"}


class DatasetNotDefined(Exception):
    @classmethod
    def named(cls, name):
        return cls(f"Failed to read dataset '{name}'. Dataset is not defined in the pipeline.")


class ViewCycle(Exception):
    pass


class DependencyFailed(Exception):
    """A flow read a view whose own definition failed; that failure is the
    error reported, not this one."""


def analyze(request_json, namespace=None):
    """Analyzes the request's sources and prints the definitions, or writes
    them to the request's `definitions_path` (a command's output is capped)
    and prints where. The sources see `spark`, `dbutils` and `display` of
    `namespace`, by default the caller's globals (the worker context's)."""
    request = json.loads(request_json)
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    analysis = Analysis(namespace["spark"], request)
    definitions = json.dumps(analysis.run(request.get("sources") or [], namespace))
    path = request.get("definitions_path")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            out.write(definitions)
        print(MARKER + "@" + path)
    else:
        print(MARKER + definitions)


@dataclass
class DatasetDef:
    name: str
    # None: a table whose kind its own flow decides (a stream read or not).
    kind: str | None
    settings: dict
    expectations: list
    # The decorated function, which expectation decorators may mark later.
    func: object
    location: dict


@dataclass
class FlowDef:
    name: str
    target: str
    func: object
    location: dict
    once: bool = False
    cdc: dict | None = None


@dataclass(eq=False)
class Evaluation:
    """What one flow's query function built and read."""

    flow: FlowDef
    df: object = None
    # Base64 of the DataFrame's Spark Connect `Relation`.
    relation: str | None = None
    error: Exception | None = None
    inputs: list = field(default_factory=list)
    sources: list = field(default_factory=list)
    streaming: bool = False

    def add_input(self, name, streaming, skip_change_commits=False):
        entry = {"name": name, "streaming": streaming}
        if skip_change_commits:
            entry["skip_change_commits"] = True
        if entry not in self.inputs:
            self.inputs.append(entry)
        self.streaming = self.streaming or streaming

    def add_source(self, source):
        if source not in self.sources:
            self.sources.append(source)
        self.streaming = True

    def take_from(self, view, as_stream):
        """A read of `view`: its inputs and sources become this flow's."""
        for entry in view.inputs:
            self.add_input(entry["name"], entry["streaming"] or as_stream, entry.get("skip_change_commits", False))
        for source in view.sources:
            self.add_source(source)
        self.streaming = self.streaming or view.streaming or as_stream


class Analysis:
    def __init__(self, spark, request):
        self.spark = spark
        self.catalog = request.get("catalog") or "main"
        self.schema = request.get("schema") or "default"
        self.configuration = request.get("configuration") or {}
        self.known = {self.key(d["name"]): d for d in request.get("known_datasets") or []}
        self.datasets = []
        self.flows = []
        self.sinks = set()
        self.errors = []
        self.evaluations = {}
        self.stack = []

    # -- running sources ---------------------------------------------------------

    def run(self, sources, namespace):
        self.apply_configuration()
        dlt.start_analysis(self)
        try:
            with graph_element_registration_context(PysparkRegistry(self)):
                for source in sources:
                    self.run_source(source, namespace)
                for flow in list(self.flows):
                    self.evaluate(flow)
        finally:
            dlt.end_analysis()
        return self.definitions()

    def apply_configuration(self):
        for key, value in self.configuration.items():
            try:
                self.spark.conf.set(key, str(value))
            except Exception as e:  # noqa: BLE001 - reported, analysis goes on
                self.errors.append(error_entry(e, None))

    def run_source(self, source, namespace):
        path = source["path"]
        text = "\n" * (int(source.get("first_line") or 1) - 1) + source["code"]
        linecache.cache[path] = (len(text), None, text.splitlines(True), path)
        try:
            code = compile(text, path, "exec")
        except SyntaxError as e:
            self.errors.append(error_entry(e, {"path": path, "line": e.lineno}))
            return
        try:
            exec(code, self.source_globals(namespace))
        except Exception as e:  # noqa: BLE001 - every user failure is a definition error
            self.errors.append(error_entry(e, {"path": path, "line": deepest_line(e, path)}))

    def source_globals(self, namespace):
        source_globals = {
            "__name__": "__main__",
            "__builtins__": __builtins__,
            "spark": AnalysisSession(self),
            "display": ignore_display,
            "displayHTML": ignore_display,
        }
        if "dbutils" in namespace:
            source_globals["dbutils"] = namespace["dbutils"]
        return source_globals

    # -- definitions (called by dlt) ---------------------------------------------

    def define_dataset(self, name, kind, settings, expectations, func, location):
        self.datasets.append(DatasetDef(name, kind, settings, expectations, func, location))

    def define_flow(self, name, target, func, location, once=False, cdc=None):
        if self.key(target) in {self.key(s) for s in self.sinks}:
            raise NotImplementedError(
                f"Flow '{name}' writes to the sink '{target}': tarn pipelines do not support sinks yet."
            )
        self.flows.append(FlowDef(name, target, func, location, once, cdc))

    def define_cdc_flow(self, name, target, cdc, where, location, once=False):
        def changes():
            df = self.read_dataset(cdc["source"], streaming=True)
            return df if where is None else df.where(where)

        self.define_flow(name, target, changes, location, once, cdc)

    def define_sink(self, name):
        self.sinks.add(name)

    # -- names -----------------------------------------------------------------------

    def key(self, name):
        """How a dataset name is compared: case-insensitive, without the
        `LIVE.` prefix or this pipeline's own catalog and schema."""
        parts = [p.lower() for p in split_name(name)]
        if len(parts) == 2 and parts[0] == "live":
            parts = parts[1:]
        elif len(parts) == 3 and parts[:2] == [self.catalog.lower(), self.schema.lower()]:
            parts = parts[2:]
        elif len(parts) == 2 and parts[0] == self.schema.lower():
            parts = parts[1:]
        return ".".join(parts)

    def lookup(self, name):
        """(name as defined, kind) of the pipeline dataset `name`, or None."""
        key = self.key(name)
        for dataset in self.datasets:
            if self.key(dataset.name) == key:
                return dataset.name, dataset.kind
        if key in self.known:
            return self.known[key]["name"], self.known[key].get("kind")
        return None

    def full_name(self, name):
        parts = split_name(name)
        prefix = [self.catalog, self.schema][: max(0, 3 - len(parts))]
        return ".".join(quote(p) for p in prefix + parts)

    # -- reading (called while query functions run) ---------------------------------

    @property
    def current(self):
        return self.stack[-1] if self.stack else None

    def read_dataset(self, name, streaming):
        """`dlt.read`/`dlt.read_stream`: the dataset must be the pipeline's."""
        if self.current is None:
            raise RuntimeError(
                f"dlt.read('{name}') must be called inside the query function of a dataset or flow."
            )
        found = self.lookup(name)
        if found is None:
            raise DatasetNotDefined.named(name)
        return self.read_found(found, streaming)

    def read_table(self, name, streaming, skip_change_commits=False):
        """`spark.read.table` and friends: a pipeline dataset, or None for
        an ordinary table (`LIVE.x` must be the pipeline's)."""
        if self.current is None:
            return None
        found = self.lookup(name)
        if found is None and is_live(name):
            raise DatasetNotDefined.named(name)
        return None if found is None else self.read_found(found, streaming, skip_change_commits)

    def read_found(self, found, streaming, skip_change_commits=False):
        name, kind = found
        view_flow = self.view_flow(name) if kind == dlt.VIEW else None
        if view_flow is not None:
            view = self.evaluate(view_flow)
            if view.error is not None:
                raise DependencyFailed(f"View '{name}' failed: {view.error}")
            self.current.take_from(view, streaming)
            if self.view_has_expectations(name):
                # tarn runs the view with its expectations in the flow's
                # session, under the view's name, and the flow reads that.
                self.current.add_input(name, False)
                return self.spark.read.table(quote(name))
            return view.df
        self.current.add_input(name, streaming, skip_change_commits)
        if streaming:
            # Each update points this view at the rows the flow has not read.
            return self.spark.read.table(stream_view(name))
        return self.spark.read.table(self.full_name(name))

    def view_has_expectations(self, name):
        key = self.key(name)
        dataset = next((d for d in self.datasets if self.key(d.name) == key), None)
        return dataset is not None and bool(dataset.expectations + dlt.expectations_of(dataset.func))

    def view_flow(self, name):
        key = self.key(name)
        return next((f for f in self.flows if self.key(f.target) == key), None)

    def read_files(self, path, file_format, options, schema):
        """A file stream: read through a temporary view that each update
        points at the files the flow has not processed yet."""
        paths = [path] if isinstance(path, str) else list(path)
        frames = []
        for one in paths:
            view = files_view(one)
            source = {"path": one, "format": file_format, "options": dict(options), "view": view}
            if schema is not None:
                source["schema"] = schema if isinstance(schema, str) else dlt.schema_ddl(schema)
            self.current.add_source(source)
            frames.append(self.spark.read.table(view))
        df = frames[0]
        for more in frames[1:]:
            df = df.unionByName(more, allowMissingColumns=True)
        return df

    def read_external_stream(self):
        """A stream of something outside the pipeline (passed through)."""
        self.current.streaming = True

    def sql(self, query, args=None, **kwargs):
        """`spark.sql` inside a query function: the SQL plan, not run; the
        pipeline datasets it names are inputs."""
        from pyspark.sql.connect import functions as F
        from pyspark.sql.connect.dataframe import DataFrame
        from pyspark.sql.connect.plan import SQL, SubqueryAlias

        positional, named, views = [], {}, []
        if isinstance(args, dict):
            named = {k: F.lit(v) for k, v in args.items()}
        elif args is not None:
            positional = [F.lit(v) for v in args]
        if kwargs:
            from pyspark.sql.connect.sql_formatter import SQLStringFormatter

            formatter = SQLStringFormatter(self.spark)
            query = formatter.format(query, **kwargs)
            views = [SubqueryAlias(df._plan, name) for df, name in formatter._temp_views]
        for name, streaming in sql_references(query):
            found = self.lookup(name)
            if found is not None:
                self.current.add_input(found[0], streaming)
            elif is_live(name):
                raise DatasetNotDefined.named(name)
        return DataFrame(SQL(query, positional, named, views), self.spark)

    # -- evaluating flows ----------------------------------------------------------

    def evaluate(self, flow):
        """Calls the flow's query function once (memoized); a failure is
        reported at the definition's location."""
        done = self.evaluations.get(id(flow))
        if done is not None:
            if any(e is done for e in self.stack):
                cycle = self.stack[[id(e) for e in self.stack].index(id(done)) :]
                chain = " -> ".join(e.flow.target for e in cycle)
                raise ViewCycle(f"Views read each other in a cycle: {chain} -> {flow.target}")
            return done
        evaluation = Evaluation(flow)
        self.evaluations[id(flow)] = evaluation
        self.stack.append(evaluation)
        try:
            evaluation.df = checked_dataframe(flow, flow.func())
            evaluation.relation = relation_base64(evaluation.df, self.spark)
        except DependencyFailed as e:
            evaluation.error = e
        except Exception as e:  # noqa: BLE001 - every user failure is a definition error
            evaluation.error = e
            self.errors.append(error_entry(e, flow.location))
        finally:
            self.stack.pop()
        return evaluation

    # -- output --------------------------------------------------------------------

    def definitions(self):
        flows = []
        for flow in self.flows:
            evaluation = self.evaluations.get(id(flow))
            if evaluation is None or evaluation.error is not None:
                continue
            flows.append(self.flow_json(flow, evaluation))
        return {
            "datasets": [self.dataset_json(d) for d in self.datasets],
            "flows": flows,
            "errors": self.errors,
        }

    def dataset_json(self, dataset):
        settings = dataset.settings
        return {
            "name": dataset.name,
            "kind": dataset.kind or self.table_kind(dataset),
            "comment": settings.get("comment"),
            "table_properties": {k: jsonable(v) for k, v in settings.get("table_properties", {}).items()},
            "partition_cols": settings.get("partition_cols", []),
            "cluster_by": settings.get("cluster_by", []),
            "schema": settings.get("schema"),
            "expectations": dataset.expectations + dlt.expectations_of(dataset.func),
            "location": dataset.location,
        }

    def table_kind(self, dataset):
        """`@dlt.table`: a streaming table when its own flow reads a stream."""
        own = next((f for f in self.flows if f.func is dataset.func and f.target == dataset.name), None)
        evaluation = self.evaluations.get(id(own))
        streaming = evaluation is not None and evaluation.error is None and evaluation.streaming
        return dlt.STREAMING_TABLE if streaming else dlt.MATERIALIZED_VIEW

    def flow_json(self, flow, evaluation):
        return {
            "name": flow.name,
            "target": flow.target,
            "query": {"relation": evaluation.relation},
            "inputs": evaluation.inputs,
            "sources": evaluation.sources,
            "once": flow.once,
            "cdc": flow.cdc,
            "location": flow.location,
        }


class AnalysisSession:
    """The `spark` sources see: the real session, except that reads inside
    a query function resolve pipeline datasets and file streams, and
    `spark.sql` there builds a plan instead of running."""

    def __init__(self, analysis):
        self._analysis = analysis

    def __getattr__(self, name):
        return getattr(self._analysis.spark, name)

    @property
    def read(self):
        return TableReader(self._analysis, self._analysis.spark.read)

    @property
    def readStream(self):
        if self._analysis.current is None:
            return self._analysis.spark.readStream
        return StreamReader(self._analysis)

    def table(self, tableName):
        df = self._analysis.read_table(tableName, streaming=False)
        return self._analysis.spark.table(tableName) if df is None else df

    def sql(self, query, args=None, **kwargs):
        if self._analysis.current is None:
            return self._analysis.spark.sql(query, args, **kwargs)
        return self._analysis.sql(query, args, **kwargs)


class TableReader:
    """`spark.read`: `table` may be a pipeline dataset; the rest is the real
    reader's (chained calls stay wrapped)."""

    def __init__(self, analysis, reader):
        self._analysis = analysis
        self._reader = reader

    def __getattr__(self, name):
        attr = getattr(self._reader, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            result = attr(*args, **kwargs)
            return self if result is self._reader else result

        return call

    def table(self, tableName):
        df = self._analysis.read_table(tableName, streaming=False)
        return self._reader.table(tableName) if df is None else df


class StreamReader:
    """`spark.readStream` inside a query function: pipeline datasets and
    file streams (Auto Loader's `cloudFiles` or a file format)."""

    def __init__(self, analysis):
        self._analysis = analysis
        self._format = None
        self._options = {}
        self._schema = None

    def format(self, source):
        self._format = source
        return self

    def option(self, key, value):
        self._options[key] = option_string(value)
        return self

    def options(self, **options):
        for key, value in options.items():
            self.option(key, value)
        return self

    def schema(self, schema):
        self._schema = schema
        return self

    def name(self, source_name):
        return self

    def load(self, path=None, format=None, schema=None, **options):
        if format is not None:
            self.format(format)
        if schema is not None:
            self.schema(schema)
        self.options(**{k: v for k, v in options.items() if v is not None})
        source = (self._format or "parquet").lower()
        if source == "cloudfiles":
            file_format = next((v for k, v in self._options.items() if k.lower() == "cloudfiles.format"), None)
            if file_format is None:
                raise ValueError("Auto Loader needs the file format: .option('cloudFiles.format', 'json')")
        elif source in FILE_FORMATS:
            file_format = source
        else:
            raise NotImplementedError(
                f"tarn pipelines cannot stream from '{self._format}'; stream files (cloudFiles, json, csv, "
                "parquet, ...) or pipeline datasets"
            )
        if path is None:
            raise ValueError("a file stream needs a path: .load('/Volumes/...')")
        return self._analysis.read_files(path, file_format.lower(), self._options, self._schema)

    def json(self, path, schema=None, **options):
        return self.load(path, "json", schema, **options)

    def csv(self, path, schema=None, **options):
        return self.load(path, "csv", schema, **options)

    def parquet(self, path, **options):
        return self.load(path, "parquet", **options)

    def text(self, path, **options):
        return self.load(path, "text", **options)

    def orc(self, path, **options):
        return self.load(path, "orc", **options)

    def xml(self, path, schema=None, **options):
        return self.load(path, "xml", schema, **options)

    def table(self, tableName):
        skip = any(k.lower() == "skipchangecommits" and v.lower() == "true" for k, v in self._options.items())
        df = self._analysis.read_table(tableName, streaming=True, skip_change_commits=skip)
        if df is not None:
            return df
        self._analysis.read_external_stream()
        return self._analysis.spark.readStream.table(tableName)


class PysparkRegistry(GraphElementRegistry):
    """Where `pyspark.pipelines.api`'s own functions register while an
    analysis runs (code that imports them from there, not through `dlt`)."""

    def __init__(self, analysis):
        self.analysis = analysis

    def register_output(self, output):
        register_pyspark_output(self.analysis, output)

    def register_flow(self, flow):
        location = pyspark_location(flow.source_code_location)
        self.analysis.define_flow(flow.name, flow.target, flow.func, location)

    def register_auto_cdc_flow(self, flow):
        register_pyspark_cdc_flow(self.analysis, flow)

    def register_sql(self, sql_text, file_path):
        raise NotImplementedError("SQL definitions go to tarn as SQL sources, not through Python")


def register_pyspark_output(analysis, output):
    kinds = {
        "MaterializedView": dlt.MATERIALIZED_VIEW,
        "StreamingTable": dlt.STREAMING_TABLE,
        "TemporaryView": dlt.VIEW,
    }
    kind = kinds.get(type(output).__name__)
    if kind is None:
        analysis.define_sink(output.name)
        return
    settings = {"comment": output.comment}
    if kind != dlt.VIEW:
        settings.update(
            dlt.table_settings(
                output.comment, output.table_properties, output.partition_cols, output.cluster_by, output.schema
            )
        )
    location = pyspark_location(output.source_code_location)
    analysis.define_dataset(output.name, kind, settings, [], None, location)


def register_pyspark_cdc_flow(analysis, flow):
    cdc = {
        "source": flow.source,
        "keys": dlt.column_names(flow.keys),
        "sequence_by": dlt.column_sql(flow.sequence_by),
        "apply_as_deletes": dlt.optional_sql(flow.apply_as_deletes),
        "apply_as_truncates": None,
        "column_list": dlt.optional_names(flow.column_list),
        "except_column_list": dlt.optional_names(flow.except_column_list),
        "stored_as_scd_type": dlt.scd_type(flow.stored_as_scd_type or 1),
        "track_history_column_list": None,
        "track_history_except_column_list": None,
        "ignore_null_updates": False,
    }
    location = pyspark_location(flow.source_code_location)
    analysis.define_cdc_flow(flow.name or flow.target, flow.target, cdc, None, location)


def pyspark_location(location):
    return {"path": location.filename, "line": location.line_number}


def checked_dataframe(flow, df):
    if not hasattr(df, "_plan"):
        raise TypeError(
            f"The query function of '{flow.name}' must return a Spark DataFrame, not {type(df).__name__}"
        )
    return df


def relation_base64(df, spark):
    """The plan as the `Relation` message, never compressed (that would ask
    the server for its settings)."""
    relation = df._plan.plan(spark.client)
    return base64.b64encode(relation.SerializeToString()).decode("ascii")


def stream_view(name):
    """The view a streaming read of dataset `name` goes through (the Rust
    side's `graph::stream_view`)."""
    bare = name.replace("`", "")
    if bare.lower().startswith("live."):
        bare = bare[5:]
    return f"__tarn_stream__{bare}"


def files_view(path):
    """The view a file stream of `path` goes through."""
    import hashlib

    return "__tarn_files__" + hashlib.sha1(path.encode()).hexdigest()[:16]


def ignore_display(*args, **kwargs):
    """`display` and `displayHTML` do nothing while definitions are analyzed."""


def error_entry(e, location):
    if isinstance(e, SyntaxError):
        message = e.msg
    else:
        message = str(e).strip() or type(e).__name__
    return {"message": message, "class": type(e).__name__, "location": location}


def deepest_line(e, path):
    """The line of the innermost traceback frame that runs `path`'s code."""
    line = None
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def option_string(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def jsonable(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def split_name(name):
    """The parts of a multi-part name; backquoted parts may hold dots."""
    parts, current, quoted, i = [], "", False, 0
    while i < len(name):
        c = name[i]
        if c == "`" and quoted and name.startswith("``", i):
            current, i = current + "`", i + 2
            continue
        if c == "`":
            quoted = not quoted
        elif c == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += c
        i += 1
    parts.append(current)
    return [p.strip() for p in parts]


def is_live(name):
    parts = split_name(name)
    return len(parts) == 2 and parts[0].lower() == "live"


def quote(name):
    return "`" + name.replace("`", "``") + "`"


NAME = r"(?:`(?:[^`]|``)+`|\w+)(?:\s*\.\s*(?:`(?:[^`]|``)+`|\w+))*"
STREAM_REFERENCE = re.compile(rf"\bSTREAM\s*(?:\(\s*({NAME})\s*\)|\s({NAME}))", re.IGNORECASE)
TABLE_REFERENCE = re.compile(rf"\b(?:FROM|JOIN)\s+({NAME})", re.IGNORECASE)
LIVE_REFERENCE = re.compile(r"\bLIVE\s*\.\s*(`(?:[^`]|``)+`|\w+)", re.IGNORECASE)


def sql_references(query):
    """(name, streaming) of the tables a query names: `STREAM(x)` and
    `STREAM x` as streams; `FROM x`, `JOIN x` and `LIVE.x` in full unless
    the same name is streamed."""
    streamed = [strip_spaces(m.group(1) or m.group(2)) for m in STREAM_REFERENCE.finditer(query)]
    named = [strip_spaces(m.group(1)) for m in TABLE_REFERENCE.finditer(query)]
    named += ["LIVE." + m.group(1) for m in LIVE_REFERENCE.finditer(query)]
    stream_keys = {bare(n) for n in streamed}
    batch = [n for n in named if n.upper() != "STREAM" and bare(n) not in stream_keys]
    return [(n, True) for n in streamed] + [(n, False) for n in batch]


def bare(name):
    return name.lower().removeprefix("live.")


def strip_spaces(name):
    return re.sub(r"\s*\.\s*", ".", name)
