"""`dbutils` for commands in a tarn execution context.

`fs` goes through tarn's DBFS API (which also serves `/Volumes/...`), with
the context's token, so it sees what every other client sees; `file:/`
paths are this machine's. `widgets` hold the values a run passes in;
`jobs.taskValues` keeps what a task sets for the job runner;
`notebook.exit` ends the command with a value.
"""

import base64
import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request


class DbutilsError(Exception):
    pass


class FileInfo:
    def __init__(self, path, name, size, modification_time, is_dir):
        self.path = path
        self.name = name
        self.size = size
        self.modificationTime = modification_time
        self._is_dir = is_dir

    def isDir(self):
        return self._is_dir

    def isFile(self):
        return not self._is_dir

    def __repr__(self):
        return (
            f"FileInfo(path='{self.path}', name='{self.name}', size={self.size}, "
            f"modificationTime={self.modificationTime})"
        )


class Api:
    """A small client of tarn's REST API with the context's token."""

    def __init__(self, host, token):
        self.host = host.rstrip("/")
        self.token = token

    def call(self, method, path, body=None, query=None):
        url = self.host + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())
                message = f"{err.get('error_code')}: {err.get('message')}"
            except ValueError:
                message = str(e)
            raise DbutilsError(message) from None
        return json.loads(raw) if raw else {}


def dbfs_path(path):
    if path.startswith("dbfs:"):
        path = path[len("dbfs:") :]
    if not path.startswith("/"):
        raise DbutilsError(f"Path must be absolute: {path}")
    return path


def local_path(path):
    return path[len("file:") :] if path.startswith("file:") else None


class Fs:
    CHUNK = 1 << 20

    def __init__(self, api):
        self.api = api

    def ls(self, path):
        local = local_path(path)
        if local is not None:
            entries = [os.path.join(local, n) for n in sorted(os.listdir(local))]
            return [
                FileInfo(
                    "file:" + e + ("/" if os.path.isdir(e) else ""),
                    os.path.basename(e) + ("/" if os.path.isdir(e) else ""),
                    0 if os.path.isdir(e) else os.path.getsize(e),
                    int(os.path.getmtime(e) * 1000),
                    os.path.isdir(e),
                )
                for e in entries
            ]
        listing = self.api.call("GET", "/api/2.0/dbfs/list", query={"path": dbfs_path(path)})
        infos = []
        for f in listing.get("files", []):
            name = f["path"].rstrip("/").rsplit("/", 1)[-1] + ("/" if f.get("is_dir") else "")
            prefix = "/Volumes" if f["path"].startswith("/Volumes") else "dbfs:"
            full = (f["path"] if prefix == "/Volumes" else "dbfs:" + f["path"]) + ("/" if f.get("is_dir") else "")
            infos.append(FileInfo(full, name, f.get("file_size", 0), f.get("modification_time", 0), f.get("is_dir")))
        return infos

    def mkdirs(self, path):
        local = local_path(path)
        if local is not None:
            os.makedirs(local, exist_ok=True)
        else:
            self.api.call("POST", "/api/2.0/dbfs/mkdirs", {"path": dbfs_path(path)})
        return True

    def read_bytes(self, path, limit=None):
        local = local_path(path)
        if local is not None:
            with open(local, "rb") as f:
                return f.read(limit) if limit is not None else f.read()
        out, offset = bytearray(), 0
        while limit is None or len(out) < limit:
            want = self.CHUNK if limit is None else min(self.CHUNK, limit - len(out))
            part = self.api.call(
                "GET", "/api/2.0/dbfs/read", query={"path": dbfs_path(path), "offset": offset, "length": want}
            )
            data = base64.b64decode(part.get("data", ""))
            if not data:
                break
            out += data
            offset += len(data)
        return bytes(out)

    def write_bytes(self, path, data, overwrite):
        local = local_path(path)
        if local is not None:
            if os.path.exists(local) and not overwrite:
                raise DbutilsError(f"File {path} already exists")
            with open(local, "wb") as f:
                f.write(data)
            return
        handle = self.api.call("POST", "/api/2.0/dbfs/create", {"path": dbfs_path(path), "overwrite": overwrite})
        for i in range(0, len(data), self.CHUNK):
            chunk = base64.b64encode(data[i : i + self.CHUNK]).decode()
            self.api.call("POST", "/api/2.0/dbfs/add-block", {"handle": handle["handle"], "data": chunk})
        self.api.call("POST", "/api/2.0/dbfs/close", {"handle": handle["handle"]})

    def head(self, path, maxBytes=65536):
        return self.read_bytes(path, maxBytes).decode("utf-8", errors="replace")

    def put(self, path, contents, overwrite=False):
        self.write_bytes(path, contents.encode("utf-8"), overwrite)
        return True

    def rm(self, path, recurse=False):
        local = local_path(path)
        if local is not None:
            if os.path.isdir(local):
                shutil.rmtree(local) if recurse else os.rmdir(local)
            else:
                os.remove(local)
        else:
            self.api.call("POST", "/api/2.0/dbfs/delete", {"path": dbfs_path(path), "recursive": recurse})
        return True

    def cp(self, source, destination, recurse=False):
        if recurse and self._is_dir(source):
            self.mkdirs(destination)
            for info in self.ls(source):
                name = info.name.rstrip("/")
                self.cp(source.rstrip("/") + "/" + name, destination.rstrip("/") + "/" + name, recurse=True)
            return True
        self.write_bytes(destination, self.read_bytes(source), overwrite=True)
        return True

    def mv(self, source, destination, recurse=False):
        if local_path(source) is None and local_path(destination) is None:
            self.api.call("POST", "/api/2.0/dbfs/move", {"source_path": dbfs_path(source), "destination_path": dbfs_path(destination)})
            return True
        self.cp(source, destination, recurse)
        return self.rm(source, recurse)

    def _is_dir(self, path):
        local = local_path(path)
        if local is not None:
            return os.path.isdir(local)
        return bool(self.api.call("GET", "/api/2.0/dbfs/get-status", query={"path": dbfs_path(path)}).get("is_dir"))


class Widgets:
    def __init__(self, values):
        self.values = dict(values or {})
        self.defaults = {}

    def _define(self, name, defaultValue, *_args, **_kwargs):
        self.defaults[name] = defaultValue

    text = dropdown = combobox = multiselect = _define

    def get(self, name):
        if name in self.values:
            return self.values[name]
        if name in self.defaults:
            return self.defaults[name]
        raise DbutilsError(f"InputWidgetNotDefined: No input widget named {name} is defined")

    getArgument = get

    def getAll(self):
        return {**self.defaults, **self.values}

    def remove(self, name):
        self.defaults.pop(name, None)

    def removeAll(self):
        self.defaults.clear()


class TaskValues:
    def __init__(self, owner, values):
        self.owner = owner
        self.upstream = values or {}

    LIMIT = 48 * 1024

    def set(self, key, value):
        encoded = json.dumps(value)  # task values must be JSON
        if len(encoded.encode("utf-8")) > self.LIMIT:
            raise ValueError(f"The task value '{key}' is {len(encoded)} bytes as JSON; the limit is 48 KiB.")
        self.owner.task_values_set[key] = value

    def get(self, taskKey, key, default=None, debugValue=None):
        if taskKey in self.upstream:
            return self.upstream[taskKey].get(key, default)
        if debugValue is None:
            raise TypeError("Must pass debugValue when calling get outside of a job context. debugValue cannot be None.")
        return debugValue


class Jobs:
    def __init__(self, owner, values):
        self.taskValues = TaskValues(owner, values)


class Notebook:
    def __init__(self, kernel):
        self.kernel = kernel

    def exit(self, value):
        self.kernel.notebook_exit(value)


class Library:
    """Notebook-scoped libraries: install them with `%pip install`."""

    def __init__(self, kernel):
        self.kernel = kernel

    def restartPython(self):
        """Ends this command and restarts the context's Python process in its
        environment (with what `%pip` installed); globals are lost."""
        self.kernel.restart_python()


class SecretMetadata:
    def __init__(self, key):
        self.key = key

    def __repr__(self):
        return f"SecretMetadata(key='{self.key}')"


class SecretScope:
    def __init__(self, name):
        self.name = name

    def getName(self):
        return self.name

    def __repr__(self):
        return f"SecretScope(name='{self.name}')"


class Secrets:
    """`dbutils.secrets` through tarn's Secrets API, as the context's
    principal. Every value read is remembered, so the kernel replaces it
    with [REDACTED] wherever it shows up in a command's result."""

    def __init__(self, api, seen):
        self.api = api
        self.seen = seen

    def getBytes(self, scope, key):
        reply = self.api.call("GET", "/api/2.0/secrets/get", query={"scope": scope, "key": key})
        value = base64.b64decode(reply.get("value", ""))
        text = value.decode("utf-8", errors="replace")
        if text:
            self.seen.add(text)
        return value

    def get(self, scope, key):
        return self.getBytes(scope, key).decode("utf-8")

    def list(self, scope):
        reply = self.api.call("GET", "/api/2.0/secrets/list", query={"scope": scope})
        return [SecretMetadata(s["key"]) for s in reply.get("secrets", [])]

    def listScopes(self):
        reply = self.api.call("GET", "/api/2.0/secrets/scopes/list")
        return [SecretScope(s["name"]) for s in reply.get("scopes", [])]


class DBUtils:
    def __init__(self, kernel, req):
        self.task_values_set = {}
        api = Api(req["api_url"], req["token"])
        self.fs = Fs(api)
        self.widgets = Widgets(req.get("widgets"))
        self.jobs = Jobs(self, req.get("task_values"))
        self.notebook = Notebook(kernel)
        self.library = Library(kernel)
        self.secrets = Secrets(api, kernel.secret_values)

    def __repr__(self):
        return "Package 'dbutils'. For more information, type 'dbutils.help()' in a cell."
