"""tarn's Python worker: the interpreter behind one execution context.

tarn starts it from the base runtime and talks to it in JSON lines: requests
on stdin, replies on the original stdout (fd 1 is pointed at the log, so
output written below Python cannot break the protocol). The worker first
imports what commands need and says {"ready": ...}; it is kept warm in a pool
until a context takes it with an "attach" request, which connects `spark` to
the context's cluster through tarn's gateway. Then each "execute" request runs
one command with persistent globals and answers with its results in the
shape of the Command Execution API. SIGINT interrupts the running command
(the context survives); closing stdin ends the worker. A job task's command
names a "reply_file": its result is written there before it is answered, so
a tarn that takes over from one that died while the command ran still gets
it (a worker outlives the tarn that started it until its command ends).
"""

import ast
import base64
import datetime
import decimal
import json
import linecache
import os
import resource
import signal
import sys
import threading
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


class NotebookExit(Exception):
    """Raised by dbutils.notebook.exit: ends the command with its value."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


class RestartPython(BaseException):
    """Raised by dbutils.library.restartPython(): the rest of the command is
    skipped and tarn starts a new worker for the context."""


class ShellError(Exception):
    """A %sh command that exited with a non-zero status."""


class CappedOutput:
    """stdout/stderr while a command runs, kept up to a byte limit."""

    def __init__(self, limit):
        self.limit = limit
        self.parts = []
        self.size = 0
        self.skipped = 0

    def write(self, text):
        if not isinstance(text, str):
            text = str(text)
        room = self.limit - self.size
        if room > 0:
            kept = text[:room]
            self.parts.append(kept)
            self.size += len(kept)
            self.skipped += len(text) - len(kept)
        else:
            self.skipped += len(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    def text(self):
        out = "".join(self.parts)
        if self.skipped:
            out += f"\n*** WARNING: max output size exceeded, skipped {self.skipped} characters of output ***\n"
        return out


class Kernel:
    def __init__(self):
        self.executing = False
        self.spark = None
        self.output_limit = 1 << 20
        self.row_limit = 1000
        self.memory_mb = None
        self.table = None
        self.globals = {"__name__": "__main__", "__builtins__": __builtins__}
        self.counter = 0
        self.attach_request = {}
        # Secret values this context has read (dbutils.secrets): redacted from results.
        self.secret_values = set()

    # -- protocol ---------------------------------------------------------

    def on_sigint(self, _signum, _frame):
        if self.executing:
            raise KeyboardInterrupt

    def attach(self, req):
        os.environ["DATABRICKS_HOST"] = req["api_url"]
        os.environ["DATABRICKS_TOKEN"] = req["token"]
        os.environ["SPARK_REMOTE"] = req["remote"]
        # mlflow logs to this tarn, as it logs to its workspace on Databricks.
        os.environ["MLFLOW_TRACKING_URI"] = req["api_url"]
        os.environ["MLFLOW_REGISTRY_URI"] = req["api_url"]
        os.environ["MLFLOW_TRACKING_TOKEN"] = req["token"]
        os.environ["DATABRICKS_CLUSTER_ID"] = req.get("cluster_id") or ""
        # The cluster's spark_env_vars, secret references already resolved;
        # those values are redacted from every result, as on Databricks.
        os.environ.update(req.get("env") or {})
        self.secret_values.update(v for v in req.get("secret_values") or [] if v)
        self.output_limit = int(req.get("output_limit") or self.output_limit)
        self.row_limit = int(req.get("row_limit") or self.row_limit)
        self.memory_mb = req.get("memory_mb")
        self.attach_request = {k: v for k, v in req.items() if k != "op"}
        # %sh and relative paths start in the cluster's driver directory.
        if req.get("workdir"):
            os.makedirs(req["workdir"], exist_ok=True)
            os.chdir(req["workdir"])
        # A job task's Python file sees its parameters as sys.argv.
        if req.get("argv") is not None:
            sys.argv = [str(a) for a in req["argv"]]

        from pyspark.sql import SparkSession

        self.spark = SparkSession.builder.remote(req["remote"]).getOrCreate()
        for key, value in (req.get("spark_conf") or {}).items():
            try:
                self.spark.conf.set(key, value)
            except Exception as e:  # noqa: BLE001 - a static or unknown conf the engine refuses
                print(f"spark_conf {key} not set: {type(e).__name__}", file=sys.stderr)
        import dbutils as dbutils_module

        dbutils = dbutils_module.DBUtils(self, req)
        self.globals.update(
            spark=self.spark,
            dbutils=dbutils,
            display=self.display,
            displayHTML=self.display_html,
        )
        if self.memory_mb:
            limit_memory(int(self.memory_mb))
        return {"ok": True}

    def reset(self, req):
        """Readies this worker for another job task on the same compute:
        fresh globals, a fresh Spark session (no temp views or confs carried
        over), the new task's widgets, upstream task values and argv."""
        old = self.spark
        if old is None or session_used(old):
            self.spark = self.fresh_session(old)
        else:
            set_default_session(old)
        import dbutils as dbutils_module

        self.attach_request = {**self.attach_request, **req}
        self.secret_values.update(v for v in req.get("secret_values") or [] if v)
        self.globals = {"__name__": "__main__", "__builtins__": __builtins__}
        self.globals.update(
            spark=self.spark,
            dbutils=dbutils_module.DBUtils(self, self.attach_request),
            display=self.display,
            displayHTML=self.display_html,
        )
        sys.argv = [str(a) for a in req.get("argv") or [""]]
        return {"ok": True}

    @staticmethod
    def fresh_session(old):
        """A new Spark session, made the default; the old one is released in
        the background (a round trip the next task need not wait for)."""
        from pyspark.sql import SparkSession

        set_default_session(None)
        spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE"]).create()
        if old is not None:
            threading.Thread(target=stop_quietly, args=(old,), daemon=True).start()
        return spark

    def execute(self, req):
        language = req.get("language", "python")
        code = req.get("code", "")
        self.counter += 1
        self.table = None
        out = CappedOutput(self.output_limit)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        self.executing = True
        try:
            value = self.run_sql(code) if language == "sql" else self.run_python(code, req.get("filename"))
            result = self.success(value, out)
        except RestartPython:
            result = self.success(None, out)
            result["restartPython"] = True
        except NotebookExit as e:
            exit_value = "" if e.value is None else str(e.value)
            result = {"resultType": "text", "data": exit_value, "notebookExit": True, "stdout": out.text()}
        except SystemExit as e:
            # A script's sys.exit(0) is a success, as when Python runs it.
            if e.code in (0, None):
                result = self.success(None, out)
            else:
                result = error_result(f"SystemExit: {e.code}", user_traceback(e))
                result["stdout"] = out.text()
        except KeyboardInterrupt:
            self.executing = False
            self.interrupt_spark()
            result = {"cancelled": True}
        except MemoryError:
            self.executing = False
            result = error_result(
                f"MemoryError: the command ran out of memory (this context's limit is {self.memory_mb} MiB)",
                "MemoryError: the command needed more memory than this context may use; "
                "free variables or use a cluster with more memory.",
            )
        except BaseException as e:  # noqa: BLE001 - every user failure is a result
            result = error_result(summary_of(e), user_traceback(e))
            result["stdout"] = out.text()
        finally:
            self.executing = False
            sys.stdout, sys.stderr = saved
        # Task values travel with the result so a job run can keep them.
        task_values = getattr(self.globals.get("dbutils"), "task_values_set", None)
        if task_values:
            result["taskValues"] = task_values
        return redact(result, self.secret_values)

    def success(self, value, out):
        if self.table is not None:
            return self.table
        text = out.text()
        if value is not None:
            shown = repr(value)
            if len(shown) > self.output_limit:
                shown = shown[: self.output_limit] + "\n*** WARNING: max output size exceeded ***"
            text += shown
        return {"resultType": "text", "data": text}

    def interrupt_spark(self):
        if self.spark is None:
            return
        try:
            self.spark.interruptAll()
        except Exception:  # noqa: BLE001 - the command is cancelled either way
            pass

    # -- running code ---------------------------------------------------------

    def run_python(self, code, filename=None):
        if code.lstrip().startswith("%sh"):
            return self.run_shell(code.lstrip()[len("%sh") :])
        if filename:
            self.globals["__file__"] = filename
        else:
            filename = f"<command-{self.counter}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        tree = ast.parse(code, filename=filename, mode="exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, filename, "exec"), self.globals)
        if last is not None:
            return eval(compile(last, filename, "eval"), self.globals)
        return None

    def run_shell(self, script):
        """A %sh command: bash runs it in the working directory, its output
        (stdout and stderr together) is the result; a non-zero exit fails it."""
        import subprocess

        done = subprocess.run(
            ["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
        print(done.stdout, end="")
        if done.returncode != 0:
            raise ShellError(f"Command exited with non-zero status {done.returncode}")
        return None

    def restart_python(self):
        raise RestartPython()

    def run_sql(self, code):
        statements = split_sql(code)
        if not statements:
            raise ValueError("The SQL command is empty.")
        df = None
        for statement in statements:
            df = self.spark.sql(statement)
        self.display(df)
        return None

    # -- display --------------------------------------------------------------

    def display(self, obj=None, *args, **kwargs):
        """Shows a DataFrame as the command's table result."""
        if obj is None:
            return
        if hasattr(obj, "toArrow") or hasattr(obj, "toPandas") and hasattr(obj, "schema"):
            self.table = self.spark_table(obj)
        elif type(obj).__name__ == "DataFrame" and hasattr(obj, "itertuples"):
            self.table = pandas_table(obj, self.row_limit)
        else:
            print(repr(obj))

    def notebook_exit(self, value):
        raise NotebookExit(value)

    def display_html(self, html):
        self.table = {"resultType": "text", "data": str(html)}

    def spark_table(self, df):
        fields = df.schema.fields
        rows = df.limit(self.row_limit + 1).collect() if fields else []
        truncated = len(rows) > self.row_limit
        data = [[jsonable(v) for v in row] for row in rows[: self.row_limit]]
        data, cut = cap_rows(data, self.output_limit * 4)
        schema = [
            {"name": f.name, "type": json.dumps(f.dataType.jsonValue()), "metadata": json.dumps(f.metadata or {})}
            for f in fields
        ]
        return {
            "resultType": "table",
            "data": data,
            "schema": schema,
            "truncated": truncated or cut,
            "isJsonSchema": True,
        }


REDACTED = "[REDACTED]"


def redact(obj, values):
    """`obj` (a result: dicts, lists, strings) with every secret value in
    `values` replaced by [REDACTED]; longest values first, so a value that
    contains another is hidden whole."""
    if not values:
        return obj
    if isinstance(obj, str):
        for value in sorted(values, key=len, reverse=True):
            obj = obj.replace(value, REDACTED)
        return obj
    if isinstance(obj, list):
        return [redact(item, values) for item in obj]
    if isinstance(obj, dict):
        return {key: redact(item, values) for key, item in obj.items()}
    return obj


def pandas_table(pdf, row_limit):
    head = pdf.head(row_limit + 1)
    data = [[jsonable(v) for v in row] for row in head.itertuples(index=False, name=None)]
    truncated = len(data) > row_limit
    schema = [{"name": str(c), "type": json.dumps(str(t)), "metadata": "{}"} for c, t in pdf.dtypes.items()]
    return {
        "resultType": "table",
        "data": data[:row_limit],
        "schema": schema,
        "truncated": truncated,
        "isJsonSchema": True,
    }


def session_used(session):
    """Whether the session ever heard back from the engine (or was stopped).
    One that never did holds nothing on the server (no temp views, confs or
    caches) and serves the next task as it is: no session per no-op task."""
    client = getattr(session, "client", None)
    return session.is_stopped or getattr(client, "_server_session_id", "unknown") is not None


def set_default_session(session):
    """What `SparkSession.builder.getOrCreate()` answers in task code."""
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    ConnectSession._default_session = session
    ConnectSession._active_session.session = session


def stop_quietly(session):
    """Releases a session no task uses any more. Not `session.stop()`: that
    holds the class-wide session lock through the round trip, and a task's
    new session would wait for it."""
    for step in (session.client.release_session, session.client.close):
        try:
            step()
        except Exception:  # noqa: BLE001 - the session is gone either way
            pass


def cap_rows(data, limit):
    """Keeps whole rows while their JSON stays under `limit` characters."""
    size = 0
    for i, row in enumerate(data):
        size += len(json.dumps(row))
        if size > limit:
            return data[:i], True
    return data, False


def jsonable(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode()
    if hasattr(v, "asDict"):
        return {k: jsonable(x) for k, x in v.asDict().items()}
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if hasattr(v, "item"):  # numpy scalars
        try:
            return jsonable(v.item())
        except Exception:  # noqa: BLE001
            pass
    return str(v)


# Spark's whitespace (its lexer's WS rule).
SQL_SPACE = (
    " \t\n\r\v\f\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u202f\u205f\u3000"
)


def sql_word_char(c):
    return c == "_" or (c.isalnum() if c.isascii() else c not in SQL_SPACE)


def sql_quoted_end(code, i, quote, backslash):
    """Just past the string or name whose opening quote is before `i`, and
    whether it closed: a doubled quote stays inside, and with `backslash` a
    backslash escapes the next character."""
    n = len(code)
    while i < n:
        if backslash and code[i] == "\\":
            i += 2
        elif code[i] != quote:
            i += 1
        elif code.startswith(quote, i + 1):
            i += 2
        else:
            return i + 1, True
    return n, False


def sql_block_comment_end(code, i):
    """Just past the (nested) block comment at `i`, and whether it closed;
    `/*+` opens a hint, not a comment."""
    n, depth = len(code), 0
    while i < n:
        if code.startswith("/*", i) and not code.startswith("/*+", i):
            depth, i = depth + 1, i + 2
        elif code.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i, True
        else:
            i += 1
    return n, False


def sql_tokens(code):
    """(kind, start, end, closed) of each token of `code`, as the Rust crate
    tarn-sqltext scans SQL (Spark's lexer rules); crates/tarn-sqltext/cases.json
    holds both to the same cases."""
    i, n = 0, len(code)
    while i < n:
        start, c, kind, closed = i, code[i], "Punct", True
        if c in SQL_SPACE:
            kind = "Whitespace"
            while i < n and code[i] in SQL_SPACE:
                i += 1
        elif code.startswith("--", i):
            kind, i = "LineComment", i + 2
            while i < n and code[i] not in "\r\n":
                i += 2 if code.startswith("\\\n", i) else 1
        elif code.startswith("/*", i) and not code.startswith("/*+", i):
            kind = "BlockComment"
            i, closed = sql_block_comment_end(code, i)
        elif c in "'\"`":
            kind = "QuotedIdentifier" if c == "`" else "String"
            i, closed = sql_quoted_end(code, i + 1, c, c != "`")
        elif sql_word_char(c):
            number = c.isascii() and c.isdigit()
            kind, i = "Number" if number else "Word", i + 1
            while i < n and (sql_word_char(code[i]) or number and code[i] == "."):
                i += 1
            if i == start + 1 and c in "rR" and i < n and code[i] in "'\"":
                end = code.find(code[i], i + 1)
                kind, i, closed = "String", (n if end < 0 else end + 1), end >= 0
        else:
            i += 1
        yield kind, start, i, closed


def split_sql(code):
    """The statements of `code`: split on semicolons outside strings, quoted
    names and comments, trimmed, comments kept; pieces of only whitespace and
    closed comments are no statements."""
    statements, start, significant = [], 0, False
    for kind, begin, end, closed in sql_tokens(code):
        if kind == "Punct" and code[begin] == ";":
            if significant:
                statements.append(code[start:begin].strip(SQL_SPACE))
            start, significant = end, False
        elif not (closed and kind in ("Whitespace", "LineComment", "BlockComment")):
            significant = True
    if significant:
        statements.append(code[start:].strip(SQL_SPACE))
    return statements


def summary_of(e):
    """`AnalysisException: ...`, as a notebook shows it (no module path)."""
    message = str(e).strip()
    return f"{type(e).__name__}: {message}" if message else type(e).__name__


def user_traceback(e):
    """The traceback from the user's code down, without the kernel's frames."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


def error_result(summary, cause):
    return {"resultType": "error", "summary": summary, "cause": cause}


def limit_memory(megabytes):
    """Caps the heap this worker may grow to: what it uses now plus `megabytes`
    is left for commands, so the limit means memory commands may take."""
    used = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    used = int(line.split()[1]) * 1024
    except OSError:
        pass
    limit = used + megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def keep_reply(path, result):
    """Writes `result` to `path` whole or not at all (a reader never sees
    half of it)."""
    partial = f"{path}.partial"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(partial, path)


def main():
    proto_out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path.insert(0, HERE)
    kernel = Kernel()
    signal.signal(signal.SIGINT, kernel.on_sigint)

    import pyspark.sql.connect.session  # noqa: F401 - warm the imports a context needs
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    def reply(obj):
        try:
            proto_out.write(json.dumps(obj) + "\n")
            proto_out.flush()
        except BrokenPipeError:
            sys.exit(0)  # the tarn that started this worker is gone

    reply({"ready": True, "pid": os.getpid()})
    stdin = sys.stdin
    while True:
        try:
            line = stdin.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            return 0
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "attach":
                reply(kernel.attach(req))
            elif op == "execute":
                result = kernel.execute(req)
                if req.get("reply_file"):
                    keep_reply(req["reply_file"], result)
                reply(result)
            elif op == "reset":
                reply(kernel.reset(req))
            else:
                reply({"ok": False, "error": f"unknown request {op!r}"})
        except KeyboardInterrupt:
            reply({"cancelled": True})
        except Exception as e:  # noqa: BLE001 - the worker outlives a bad request
            reply({"ok": False, "error": summary_of(e)})


if __name__ == "__main__":
    sys.exit(main())
