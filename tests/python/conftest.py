"""Fixtures that run real `tarn serve` processes on loopback and hand out
official clients (databricks-sdk, requests) pointed at them."""

import gc
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from databricks.sdk import WorkspaceClient

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"


def tarn_binary() -> str:
    if os.environ.get("TARN_BIN"):
        return os.environ["TARN_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))
    return str(target / "debug" / "tarn")


def provision_database(home: Path) -> None:
    """With TARN_TEST_DATABASE_URL (a PostgreSQL server's URL, `.ci/run
    --postgres`), gives `home` a new database there through its tarn.toml,
    so every tarn command on that home (serve, token, mcp...) uses it."""
    config = home / "tarn.toml"
    if not os.environ.get("TARN_TEST_DATABASE_URL") or config.exists():
        return
    config.write_text(f'database_url = "{new_database()}"\n')


def new_database() -> str:
    """A new database on the TARN_TEST_DATABASE_URL server; its URL."""
    admin = os.environ["TARN_TEST_DATABASE_URL"]
    name = "tarn_" + os.urandom(6).hex()
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return f"{admin.rsplit('/', 1)[0]}/{name}"


def store_insert(home: Path, table: str, columns: list[str], rows: list[tuple]) -> None:
    """Writes `rows` straight into the metadata store of `home` (SQLite, or
    the PostgreSQL database its tarn.toml names), for tests that need more
    rows than the API would make in time. Identities continue after them."""
    config = home / "tarn.toml"
    url = re.search(r'database_url = "([^"]+)"', config.read_text()) if config.exists() else None
    if not url:
        import sqlite3

        db = sqlite3.connect(home / "metadata.db", timeout=30)
        marks = ", ".join("?" for _ in columns)
        db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        db.commit()
        db.close()
        return
    import csv
    import io

    text = io.StringIO()
    csv.writer(text).writerows(["" if v is None else v for v in row] for row in rows)
    copy = f"\\copy {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    subprocess.run(["psql", url.group(1), "-q", "-c", copy], input=text.getvalue(), text=True, check=True)
    ids = ("SELECT setval(pg_get_serial_sequence(table_name, column_name), "
           f"(SELECT COALESCE(MAX({columns[0]}), 0) + 1 FROM {table}), false) FROM information_schema.columns "
           f"WHERE table_name = '{table}' AND column_name = '{columns[0]}' AND is_identity = 'YES'")
    subprocess.run(["psql", url.group(1), "-q", "-c", ids], check=True, capture_output=True)


def release_database(home: Path) -> None:
    """Drops the database `provision_database` gave `home`, if any (the
    suite makes hundreds; each holds a copy of PostgreSQL's template)."""
    admin = os.environ.get("TARN_TEST_DATABASE_URL")
    config = home / "tarn.toml"
    found = re.search(r'database_url = "[^"]*/(tarn_[0-9a-f]+)"', config.read_text()) if config.exists() else None
    if admin and found:
        subprocess.run(["psql", admin, "-q", "-c", f"DROP DATABASE IF EXISTS {found.group(1)} WITH (FORCE)"],
                       capture_output=True)


class Tarn:
    """One `tarn serve` on an ephemeral port (or `port`) with its own TARN_HOME."""

    def __init__(self, home: Path, extra_env: dict | None = None, port: int = 0):
        self.home = home
        self.extra_env = extra_env or {}
        self.port = port
        self.proc = None
        self.url = None
        self.sessions = []

    def start(self) -> "Tarn":
        provision_database(self.home)
        env = dict(os.environ)
        env.update(
            TARN_HOME=str(self.home),
            # Environments are shared between test servers (and CI runs).
            TARN_ENV_DIR=str(CACHE / "envs"),
            # ML runtimes without torch and tensorflow (gigabytes of CUDA
            # wheels from PyPI); `tarn env sync --runtime` builds them whole.
            TARN_ML_DEEP_LEARNING="false",
            RUST_LOG="info,tower_http=warn,buoyant_kernel=warn,deltalake_core=warn",
        )
        uv = Path(sys.executable).parent / "uv"
        if uv.exists():
            env["TARN_UV"] = str(uv)
        env.update(self.extra_env)
        self.log = open(self.home / "serve.log", "ab")
        self.proc = subprocess.Popen(
            [tarn_binary(), "serve", "--port", str(self.port), "--spark-connect-port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=self.home,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.url = f"http://127.0.0.1:{m.group(1)}"
                break
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"tarn exited: {(self.home / 'serve.log').read_text()[-2000:]}")
        assert self.url, "tarn did not print its address"
        return self

    def spark(self, cluster):
        """A Spark Connect session on `cluster` through tarn's gateway."""
        from pyspark.sql import SparkSession

        url = cluster.default_tags["SparkConnectUrl"] + f";token={self.token}"
        session = SparkSession.builder.remote(url).create()
        self.sessions.append(session)
        return session

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def cli_token(self, user: str) -> str:
        """A first token for `user` (created if new), made by `tarn token
        create --user` straight in this server's store."""
        out = subprocess.run([tarn_binary(), "token", "create", "--user", user],
                             env=dict(os.environ, TARN_HOME=str(self.home)), capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def client(self, token: str | None = None) -> WorkspaceClient:
        return WorkspaceClient(host=self.url, token=token or self.token, auth_type="pat")

    def raw(self, method: str, path: str, token: str | None = None, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if token is not False:
            headers["Authorization"] = f"Bearer {token or self.token}"
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=30) -> None:
        # Sessions left open keep retrying a server that is gone, and their
        # threads keep the interpreter from exiting.
        for session in self.sessions:
            try:
                session.stop()
            except Exception:
                pass
        self.sessions.clear()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture(scope="session", autouse=True)
def isolated_databricks_config():
    # Keep a developer's ~/.databrickscfg and DATABRICKS_* out of the tests.
    for key in [k for k in os.environ if k.startswith("DATABRICKS_")]:
        del os.environ[key]
    os.environ["DATABRICKS_CONFIG_FILE"] = "/nonexistent/databrickscfg"


@pytest.fixture
def tmp_home():
    home = Path(tempfile.mkdtemp(prefix="tarn-test-"))
    provision_database(home)
    yield home
    release_database(home)
    shutil.rmtree(home, ignore_errors=True)


def own_server(prefix: str, env: dict | None = None):
    """A tarn of a module's own (its users, groups and secrets stay its
    own), for a fixture to `yield from`."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    server = Tarn(home, env).start()
    try:
        yield server
    finally:
        # Clients a test left open (a SQL connector's connection closes its
        # session when collected, retrying for minutes against a server
        # that is gone) are let go while the server still answers.
        gc.collect()
        server.stop()
        release_database(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def tarn():
    home = Path(tempfile.mkdtemp(prefix="tarn-session-"))
    server = Tarn(home).start()
    yield server
    server.stop()
    release_database(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def w(tarn) -> WorkspaceClient:
    return tarn.client()


@pytest.fixture(scope="session")
def browser(tarn):
    """Headless Chromium on the session's tarn (anonymous on loopback)."""
    from browser import Browser, available

    if not available():
        pytest.skip("chromium and chromedriver are not installed (scripts/lib.sh installs them)")
    window = Browser(tarn.url)
    yield window
    window.quit()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's S3-compatible server on loopback with one bucket, its access
    log kept, and the environment that makes a tarn keep its storage there
    under `prefix` (credentials moto accepts; the secret is random so a log
    scan can look for it)."""

    BUCKET = "tarn"

    def __init__(self, log: Path, prefix: str = "ws"):
        import uuid

        self.endpoint = f"http://127.0.0.1:{free_port()}"
        self.log = log
        self.secret = f"tarn-s3-secret-{uuid.uuid4().hex}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-p", self.endpoint.rsplit(":", 1)[1]],
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: self._answers(), timeout=60)
        requests.put(f"{self.endpoint}/{self.BUCKET}", timeout=10).raise_for_status()
        self.prefix = prefix
        self.env = {
            "TARN_STORAGE_ROOT": f"s3://{self.BUCKET}/{prefix}",
            "AWS_ACCESS_KEY_ID": "AKIATARNTEST",
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def _answers(self) -> bool:
        try:
            return requests.get(self.endpoint, timeout=5).status_code < 500
        except requests.RequestException:
            return False

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="AKIATARNTEST", aws_secret_access_key=self.secret)

    def keys(self, under: str) -> dict[str, int]:
        """Key -> size of every object under `prefix/under`."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.BUCKET, Prefix=f"{self.prefix}/{under}")
        return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.BUCKET, Key=key)["Body"].read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def wait_for(predicate, timeout=30.0, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


class Webhook:
    """A webhook receiver on loopback: what was POSTed to it, in order."""

    def __init__(self):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        posts = self.posts = []

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Hook)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.stop()


class Mailbox:
    """An SMTP server on loopback (aiosmtpd): the (recipients, message)
    pairs it received, and the environment that points tarn at it."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        mails = self.mails = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                mails.append((envelope.rcpt_tos, envelope.content.decode()))
                return "250 OK"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()
        self.env = {"TARN_SMTP_HOST": "127.0.0.1", "TARN_SMTP_PORT": str(port)}

    def stop(self):
        self.controller.stop()


# The legacy `databricks` CLI with its dependencies pinned: it lives in a venv
# of its own so that its versions never move the test venv's.
LEGACY_CLI_REQUIREMENTS = """\
databricks-cli==0.18.0
click==8.5.1
requests==2.34.2
urllib3==2.8.0
tabulate==0.10.0
six==1.17.0
oauthlib==4.0.1
PyJWT==2.15.1
certifi==2026.10.19.post1
charset-normalizer==3.5.3
idna==3.20
"""


@pytest.fixture(scope="session")
def legacy_cli() -> Path:
    """The legacy CLI's `databricks` executable (databricks-cli 0.18), from a
    venv under the cache named by the hash of its requirements, made once
    (as scripts/lib.sh's `venv_for` makes the test venv) and reused."""
    import fcntl
    import hashlib

    digest = hashlib.sha256(LEGACY_CLI_REQUIREMENTS.encode()).hexdigest()[:12]
    venv = CACHE / "venvs" / f"legacy-cli-{digest}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    # Two test runs at once must not build the same venv over each other.
    with open(venv.parent / f"legacy-cli-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".ready").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
            requirements = venv / "requirements.txt"
            requirements.write_text(LEGACY_CLI_REQUIREMENTS)
            uv = Path(sys.executable).parent / "uv"
            subprocess.run([str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                            "-r", str(requirements)], check=True)
            (venv / ".ready").touch()
    return venv / "bin" / "databricks"
