"""A model serving worker: one MLflow pyfunc model, loaded once, answering
requests tarn sends on stdin with MLflow's own scoring code, so answers and
errors are exactly those of `mlflow models serve`. The one shortcut: a plain
numeric table (see `NumericTables`) is built straight into the DataFrame
MLflow's parser would build, skipping its pandas parse (about 2 ms a
request); anything else, and any failure on that path, goes through MLflow.

Protocol (binary, both ways): a JSON header line, then `len` body bytes.
  tarn -> worker  {"id", "kind": "invoke" | "ping", "content_type", "deadline", "len"}
  worker -> tarn  {"id", "status", "mimetype", "len"}
The first line the worker writes is {"ready": true, "batching": bool}, or
{"ready": false, "error": ...} before it exits. It exits when stdin closes.

Requests that arrive while a prediction runs are taken together: when the
model is row-wise (a known flavour, or TARN_SERVING_BATCHING=true) and they
are tabular JSON without params, they go to one `predict` and the
predictions are split back; anything else, or a batch that fails, is
answered one by one. An idle worker adds no wait.
"""

import json
import os
import select
import sys
import time
import traceback
from io import StringIO

# Flavours whose pyfunc `predict` scores each row on its own.
ROW_WISE_LOADERS = {
    "mlflow.sklearn",
    "mlflow.xgboost",
    "mlflow.lightgbm",
    "mlflow.catboost",
    "mlflow.h2o",
    "mlflow.spark",
}
MAX_BATCH = 256


class Request:
    __slots__ = ("id", "kind", "content_type", "deadline", "body")

    def __init__(self, header, body):
        self.id = header["id"]
        self.kind = header.get("kind", "invoke")
        self.content_type = header.get("content_type") or "application/json"
        self.deadline = header.get("deadline")
        self.body = body


class Worker:
    """The protocol's two ends. Frames are read on the thread that scores:
    handing each from a reader thread cost a thread switch a request."""

    def __init__(self, source, out):
        self.source = source
        self.out = out
        self.pending = bytearray()

    def reply(self, request_id, status, mimetype, body):
        if isinstance(body, str):
            body = body.encode("utf-8")
        header = json.dumps({"id": request_id, "status": status, "mimetype": mimetype, "len": len(body)})
        self.out.write(header.encode() + b"\n" + body)
        self.out.flush()

    def hello(self, message):
        self.out.write(json.dumps(message).encode() + b"\n")
        self.out.flush()

    def next_request(self, wait):
        """The next whole frame; without `wait`, None if none has arrived.
        Ends the process when tarn closes stdin."""
        while True:
            end = self.pending.find(b"\n")
            if end >= 0:
                header = json.loads(self.pending[:end])
                stop = end + 1 + header.get("len", 0)
                if len(self.pending) >= stop:
                    body = bytes(self.pending[end + 1 : stop])
                    del self.pending[:stop]
                    return Request(header, body)
            if not wait and not select.select([self.source], [], [], 0)[0]:
                return None
            chunk = os.read(self.source, 1 << 20)
            if not chunk:
                os._exit(0)
            self.pending += chunk

    def take(self):
        """The next request and any others already waiting."""
        group = [self.next_request(wait=True)]
        while len(group) < MAX_BATCH:
            request = self.next_request(wait=False)
            if request is None:
                break
            group.append(request)
        return group


class NumericTables:
    """Builds the DataFrame MLflow's parser would from a `dataframe_split`
    (columns and data) or `dataframe_records` JSON body, for a model whose
    input schema is named double, float, long and integer columns only, and
    a body that names exactly those columns with numbers of their kinds. Its
    columns are built as arrays of the schema's types, which is what
    MLflow's pandas parse and cast by the schema give for such a body at a
    fraction of the cost; any other body returns None and takes MLflow's
    path."""

    KINDS = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32"}

    def __init__(self, types):
        self.types = types  # column name -> numpy dtype name

    @classmethod
    def of(cls, schema):
        if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
            return None
        types = {}
        for name, kind in zip(schema.input_names(), schema.input_types()):
            dtype = cls.KINDS.get(getattr(kind, "name", None))
            if dtype is None or name in types:
                return None
            types[name] = dtype
        return cls(types)

    def rows(self, request):
        """(columns, rows as lists) of a plain table body, else None."""
        content_type = request.content_type.replace(" ", "").lower()
        if content_type not in ("application/json", "application/json;charset=utf-8"):
            return None
        try:
            body = json.loads(request.body)
        except ValueError:
            return None
        if not isinstance(body, dict) or len(body) != 1:
            return None
        ((key, value),) = body.items()
        if key == "dataframe_split" and isinstance(value, dict) and set(value) == {"columns", "data"}:
            columns, data = value["columns"], value["data"]
            if not isinstance(columns, list) or not isinstance(data, list):
                return None
            if not all(isinstance(r, list) and len(r) == len(columns) for r in data):
                return None
        elif key == "dataframe_records" and isinstance(value, list) and value and isinstance(value[0], dict):
            columns = list(value[0])
            if not all(isinstance(r, dict) and len(r) == len(columns) for r in value):
                return None
            try:
                data = [[r[c] for c in columns] for r in value]
            except KeyError:
                return None
        else:
            return None
        if len(columns) != len(self.types) or set(columns) != set(self.types) or not data:
            return None
        return tuple(columns), data

    def frame(self, columns, rows):
        import numpy as np
        import pandas as pd

        dtypes = {self.types[name] for name in columns}
        if len(dtypes) == 1 and not next(iter(dtypes)).startswith("int"):
            # One float type: one matrix, one pandas block (a DataFrame of
            # many one-column arrays costs pandas a block each).
            if any(type(v) is not float and type(v) is not int for r in rows for v in r):
                return None
            return pd.DataFrame(np.array(rows, dtype=dtypes.pop()), columns=list(columns))
        arrays = {}
        for i, name in enumerate(columns):
            values = [r[i] for r in rows]
            dtype = self.types[name]
            integral = dtype.startswith("int")
            for v in values:
                # bool is an int to Python but not a number to MLflow's parse.
                if type(v) is not int and (integral or type(v) is not float):
                    return None
            try:
                arrays[name] = np.array(values, dtype=dtype)
            except (OverflowError, ValueError):
                return None
        return pd.DataFrame(arrays, columns=list(columns))


def load(model_dir):
    from mlflow.pyfunc import scoring_server

    model = scoring_server.load_model_with_mlflow_config(model_dir)
    loader = model.metadata.flavors.get("python_function", {}).get("loader_module")
    wanted = os.environ.get("TARN_SERVING_BATCHING", "").lower()
    batching = wanted == "true" or (wanted != "false" and loader in ROW_WISE_LOADERS)
    return model, batching


class Scorer:
    def __init__(self, model, batching):
        from mlflow.pyfunc import scoring_server

        self.server = scoring_server
        self.model = model
        self.batching = batching
        self.input_schema = model.metadata.get_input_schema()
        self.tables = NumericTables.of(self.input_schema)

    def single(self, request):
        """One request: (status, mimetype, body). A plain numeric table is
        built straight into its DataFrame; anything else, and any failure,
        goes through MLflow's scoring path."""
        from mlflow.exceptions import MlflowException

        fast = self.fast(request)
        if fast is not None:
            return fast
        try:
            result = self.server.invocations(request.body, request.content_type, self.model, self.input_schema)
            return result.status, result.mimetype, result.response
        except MlflowException as e:
            return e.get_http_status_code(), "application/json", e.serialize_as_json()
        except Exception as e:  # what FastAPI would turn into a 500
            traceback.print_exc()
            body = json.dumps({"error_code": "INTERNAL_ERROR", "message": f"{type(e).__name__}: {e}"})
            return 500, "application/json", body

    def fast(self, request):
        table = self.tables.rows(request) if self.tables is not None else None
        frame = self.tables.frame(*table) if table is not None else None
        if frame is None:
            return None
        try:
            raw = self.model.predict(frame)
        except Exception:
            return None
        out = StringIO()
        self.server.predictions_to_json(raw, out)
        return 200, "application/json", out.getvalue()

    def frame(self, request):
        """The request's DataFrame when it may join a batch, else None."""
        import pandas as pd

        if request.content_type.split(";")[0].strip() != "application/json":
            return None
        try:
            parsed = self.server._parse_json_data(request.body, self.model.metadata, self.input_schema)
        except Exception:
            return None
        if parsed.params or parsed.is_unified_llm_input or not isinstance(parsed.data, pd.DataFrame):
            return None
        return parsed.data

    def merged(self, requests):
        """One DataFrame built from the rows of every request, and each
        request's row count, when all are plain numeric tables (see
        `NumericTables`) with the same columns."""
        if self.tables is None:
            return None
        rows, counts, columns = [], [], None
        for r in requests:
            table = self.tables.rows(r)
            if table is None or (columns is not None and table[0] != columns):
                return None
            columns = table[0]
            rows.extend(table[1])
            counts.append(len(table[1]))
        frame = self.tables.frame(columns, rows)
        return None if frame is None else (frame, counts)

    def batch(self, requests):
        """Answers for `requests` from one predict, or None if they cannot share one."""
        import pandas as pd

        merged = self.merged(requests)
        if merged is not None:
            frame, counts = merged
        else:
            frames = [self.frame(r) for r in requests]
            if any(f is None for f in frames) or len({tuple(f.columns) for f in frames}) != 1:
                return None
            frame, counts = pd.concat(frames, ignore_index=True), [len(f) for f in frames]
        try:
            raw = self.model.predict(frame)
        except Exception:
            return None
        if not hasattr(raw, "__len__") or len(raw) != sum(counts):
            return None
        answers, start = [], 0
        for n in counts:
            part = raw.iloc[start : start + n] if hasattr(raw, "iloc") else raw[start : start + n]
            start += n
            out = StringIO()
            self.server.predictions_to_json(part, out)
            answers.append((200, "application/json", out.getvalue()))
        return answers

    def answer(self, group):
        """(request, (status, mimetype, body)) for every request of `group`."""
        now = time.time()
        live = []
        for r in group:
            if r.deadline is not None and now > r.deadline:
                yield r, (504, "application/json", "Request processing time exceeded limit")
            elif r.kind == "ping":
                yield r, (200, "application/json", "\n")
            else:
                live.append(r)
        answers = self.batch(live) if self.batching and len(live) > 1 else None
        if answers is None:
            answers = (self.single(r) for r in live)
        yield from zip(live, answers)


def main():
    model_dir = sys.argv[1]
    # The protocol owns the real stdout; anything the model prints goes to the log.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker = Worker(sys.stdin.fileno(), out)
    try:
        model, batching = load(model_dir)
        scorer = Scorer(model, batching)
    except BaseException as e:
        traceback.print_exc()
        worker.hello({"ready": False, "error": f"{type(e).__name__}: {e}"})
        return 1
    worker.hello({"ready": True, "batching": batching})
    while True:
        for request, (status, mimetype, body) in scorer.answer(worker.take()):
            worker.reply(request.id, status, mimetype, body)


if __name__ == "__main__":
    sys.exit(main())
