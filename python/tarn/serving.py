"""A model serving worker: one MLflow pyfunc model, loaded once, answering
requests tarn sends on stdin with MLflow's own scoring code, so answers and
errors are exactly those of `mlflow models serve`.

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
import queue
import sys
import threading
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
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.requests = queue.Queue()

    def reply(self, request_id, status, mimetype, body):
        if isinstance(body, str):
            body = body.encode("utf-8")
        header = json.dumps({"id": request_id, "status": status, "mimetype": mimetype, "len": len(body)})
        with self.lock:
            self.out.write(header.encode() + b"\n" + body)
            self.out.flush()

    def hello(self, message):
        with self.lock:
            self.out.write(json.dumps(message).encode() + b"\n")
            self.out.flush()

    def read_requests(self, source):
        """Reads frames until tarn closes stdin, then ends the process."""
        while True:
            line = source.readline()
            if not line:
                os._exit(0)
            header = json.loads(line)
            body = source.read(header.get("len", 0))
            self.requests.put(Request(header, body))

    def take(self):
        """The next request and any others already waiting."""
        group = [self.requests.get()]
        while len(group) < MAX_BATCH:
            try:
                group.append(self.requests.get_nowait())
            except queue.Empty:
                break
        return group


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

    def single(self, request):
        """One request through MLflow's scoring path: (status, mimetype, body)."""
        from mlflow.exceptions import MlflowException

        try:
            result = self.server.invocations(request.body, request.content_type, self.model, self.input_schema)
            return result.status, result.mimetype, result.response
        except MlflowException as e:
            return e.get_http_status_code(), "application/json", e.serialize_as_json()
        except Exception as e:  # what FastAPI would turn into a 500
            traceback.print_exc()
            body = json.dumps({"error_code": "INTERNAL_ERROR", "message": f"{type(e).__name__}: {e}"})
            return 500, "application/json", body

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
        """One DataFrame parsed once from the rows of every request, and each
        request's row count, when all are plain `dataframe_split` (same
        columns) or `dataframe_records` bodies and the model has an input
        schema (so types do not depend on which rows are parsed together)."""
        if self.input_schema is None:
            return None
        rows, counts, shape = [], [], None
        for r in requests:
            if r.content_type.split(";")[0].strip() != "application/json":
                return None
            try:
                body = json.loads(r.body)
            except ValueError:
                return None
            if not isinstance(body, dict) or len(body) != 1:
                return None
            (key, value), = body.items()
            if key == "dataframe_split" and isinstance(value, dict) and set(value) == {"columns", "data"}:
                this = ("split", tuple(value["columns"]) if isinstance(value["columns"], list) else None)
                data = value["data"]
            elif key == "dataframe_records":
                this, data = ("records", None), value
            else:
                return None
            if not isinstance(data, list) or this[0] is None or (shape is not None and this != shape):
                return None
            shape = this
            rows.extend(data)
            counts.append(len(data))
        if shape[0] == "split":
            merged = {"dataframe_split": {"columns": list(shape[1]), "data": rows}}
        else:
            merged = {"dataframe_records": rows}
        try:
            return self.server.infer_and_parse_data(merged, self.input_schema), counts
        except Exception:
            return None

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
    worker = Worker(out)
    try:
        model, batching = load(model_dir)
        scorer = Scorer(model, batching)
    except BaseException as e:
        traceback.print_exc()
        worker.hello({"ready": False, "error": f"{type(e).__name__}: {e}"})
        return 1
    worker.hello({"ready": True, "batching": batching})
    threading.Thread(target=worker.read_requests, args=(sys.stdin.buffer,), daemon=True).start()
    while True:
        for request, (status, mimetype, body) in scorer.answer(worker.take()):
            worker.reply(request.id, status, mimetype, body)


if __name__ == "__main__":
    sys.exit(main())
