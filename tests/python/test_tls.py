"""`tarn serve --tls` (TARN_TLS=true): HTTPS and Spark Connect over TLS on
the same ports as plain HTTP and Spark Connect, driven by databricks-sdk,
mlflow, pyspark and Python's ssl; the self-signed certificate kept under
$TARN_HOME/tls, and a certificate of the user's own (docs/tls.md)."""

import datetime
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

from conftest import Tarn

SPARK_VERSION = "16.4.x-scala2.13"
WAIT = datetime.timedelta(minutes=3)


def port_of(server: Tarn) -> int:
    return int(server.url.rsplit(":", 1)[1])


def https_url(server: Tarn) -> str:
    return f"https://127.0.0.1:{port_of(server)}"


def cert_of(server: Tarn) -> Path:
    return server.home / "tls" / "cert.pem"


@pytest.fixture(scope="module")
def tls_server():
    home = Path(tempfile.mkdtemp(prefix="tarn-tls-"))
    server = Tarn(home, {"TARN_TLS": "true"}).start()
    yield server
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


def served_certificate(port: int, alpn=("h2", "http/1.1")) -> tuple[bytes, str]:
    """The DER certificate the port serves, and the ALPN protocol it chose."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(list(alpn))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as tcp:
        with context.wrap_socket(tcp, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True), tls.selected_alpn_protocol()


def run_script(directory: Path, source: str, args: list, env: dict) -> subprocess.CompletedProcess:
    """`source` run by this interpreter in a process of its own, from a file
    (pyspark's Connect client takes a `python -c` for its doctests)."""
    script = directory / f"script-{uuid.uuid4().hex[:6]}.py"
    script.write_text(source)
    return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=180)


def test_self_signed_certificate_is_private_and_kept_across_restarts():
    home = Path(tempfile.mkdtemp(prefix="tarn-tls-restart-"))
    try:
        server = Tarn(home, {"TARN_TLS": "true"}).start()
        try:
            cert, key = cert_of(server).read_bytes(), (home / "tls" / "key.pem").read_bytes()
            assert cert.startswith(b"-----BEGIN CERTIFICATE-----") and b"PRIVATE KEY-----" in key
            assert stat.S_IMODE((home / "tls" / "key.pem").stat().st_mode) == 0o600
            served, _ = served_certificate(port_of(server))
            assert served == ssl.PEM_cert_to_DER_cert(cert.decode())
        finally:
            server.stop()
        server = Tarn(home, {"TARN_TLS": "true"}).start()
        try:
            assert cert_of(server).read_bytes() == cert
            assert (home / "tls" / "key.pem").read_bytes() == key
            served, _ = served_certificate(port_of(server))
            assert served == ssl.PEM_cert_to_DER_cert(cert.decode())
        finally:
            server.stop()
        log = (home / "serve.log").read_text()
        assert "new self-signed certificate" in log and "made at an earlier start" in log
        assert "PRIVATE KEY" not in log
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_databricks_sdk_over_https_trusts_the_certificate_it_is_given(tls_server, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_of(tls_server)))
    w = WorkspaceClient(host=https_url(tls_server), token=tls_server.token, auth_type="pat")
    assert w.current_user.me().user_name
    assert [c.cluster_id for c in w.clusters.list()] == []


def test_databricks_sdk_over_https_refuses_an_untrusted_certificate(tls_server, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    # The SDK retries connection errors, a certificate refused among them.
    config = Config(host=https_url(tls_server), token=tls_server.token, auth_type="pat", retry_timeout_seconds=1)
    w = WorkspaceClient(config=config)
    with pytest.raises(Exception) as refused:
        w.current_user.me()
    causes, err = [], refused.value
    while err is not None:
        causes.append(err)
        err = err.__cause__ or err.__context__
    assert any(isinstance(e, requests.exceptions.SSLError) for e in causes), causes
    assert "CERTIFICATE_VERIFY_FAILED" in " ".join(str(e) for e in causes)


MLFLOW = """
import sys, uuid
import mlflow
from mlflow import MlflowClient
url = sys.argv[1]
mlflow.set_tracking_uri(url)
mlflow.set_registry_uri(url)
client = MlflowClient(url)
experiment = client.create_experiment("tls-" + uuid.uuid4().hex[:8])
with mlflow.start_run(experiment_id=experiment) as run:
    mlflow.log_metric("m", 1.5)
    mlflow.log_text("over tls", "note.txt")
print("metric:", client.get_run(run.info.run_id).data.metrics["m"])
print("artifact:", mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/note.txt"))
"""


@pytest.mark.parametrize("trust", ["MLFLOW_TRACKING_SERVER_CERT_PATH", "REQUESTS_CA_BUNDLE"])
def test_mlflow_over_https(tls_server, trust, tmp_path):
    # A process of its own: mlflow and requests keep settings process-wide.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({trust: str(cert_of(tls_server)), "MLFLOW_TRACKING_TOKEN": tls_server.token,
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    ran = run_script(tmp_path, MLFLOW, [https_url(tls_server)], env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    # mlflow prints its own lines too ("View run ... at: https://...").
    answers = [line for line in ran.stdout.splitlines() if line.startswith(("metric:", "artifact:"))]
    assert answers == ["metric: 1.5", "artifact: over tls"]


def test_plain_http_and_http2_answer_on_the_same_port(tls_server):
    plain = tls_server.raw("GET", "/api/2.0/clusters/list")
    assert tls_server.url.startswith("http://") and plain.status_code == 200
    _, chosen = served_certificate(port_of(tls_server))
    assert chosen == "h2"
    _, chosen = served_certificate(port_of(tls_server), alpn=("http/1.1",))
    assert chosen == "http/1.1"
    info = json.loads((tls_server.home / "server.json").read_text())
    assert info["url"] == tls_server.url and info["tls_url"] == https_url(tls_server)
    assert info["tls_cert"] == str(cert_of(tls_server))


SPARK = """
import sys
from pyspark.sql import SparkSession
for url in sys.argv[1:]:
    spark = SparkSession.builder.remote(url).create()
    print(spark.range(3).count())
    spark.stop()
"""


def test_pyspark_spark_connect_over_tls_and_plain(tls_server, tmp_path):
    w = tls_server.client()
    cluster = w.clusters.create_and_wait(cluster_name="tls", spark_version=SPARK_VERSION, num_workers=0, timeout=WAIT)
    try:
        gateway = json.loads((tls_server.home / "server.json").read_text())["spark_connect_port"]
        params = f"token={tls_server.token};x-databricks-cluster-id={cluster.cluster_id}"
        tls = f"sc://127.0.0.1:{gateway}/;use_ssl=true;{params}"
        plain = f"sc://localhost:{gateway}/;{params}"
        env = dict(os.environ, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(cert_of(tls_server)))
        ran = run_script(tmp_path, SPARK, [tls, plain], env)
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert ran.stdout.split() == ["3", "3"]
        served, chosen = served_certificate(gateway, alpn=("h2",))
        assert served == ssl.PEM_cert_to_DER_cert(cert_of(tls_server).read_text()) and chosen == "h2"
    finally:
        w.clusters.permanent_delete(cluster.cluster_id)


def make_certificate(directory: Path, common_name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with `cryptography`."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "mine.crt", directory / "mine.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_a_certificate_of_ones_own_is_the_one_served(tmp_path):
    cert, key = make_certificate(tmp_path, f"tarn-test-{uuid.uuid4().hex[:6]}")
    home = Path(tempfile.mkdtemp(prefix="tarn-tls-own-"))
    server = Tarn(home, {"TARN_TLS_CERT": str(cert), "TARN_TLS_KEY": str(key)}).start()
    try:
        served, _ = served_certificate(port_of(server))
        assert served == ssl.PEM_cert_to_DER_cert(cert.read_text())
        assert not (home / "tls").exists()
        answered = requests.get(f"{https_url(server)}/api/2.0/clusters/list", verify=str(cert), timeout=30,
                                headers={"Authorization": f"Bearer {server.token}"})
        assert answered.status_code == 200
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def tls_failures(err: BaseException) -> list:
    """The certificate errors in `err`'s chain of causes."""
    found = []
    while err is not None:
        if isinstance(err, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(err):
            found.append(err)
        err = err.__cause__ or err.__context__
    return found


def test_databricks_sql_connector_completes_the_tls_handshake(tls_server):
    from databricks import sql

    connect = dict(server_hostname="127.0.0.1", _port=port_of(tls_server), http_path="/sql/1.0/warehouses/tls",
                   access_token=tls_server.token, _retry_stop_after_attempts_count=1)
    # Whatever the Thrift endpoint answers (404 before it exists), it
    # answers over TLS: no certificate error on the way.
    try:
        sql.connect(**connect, _tls_trusted_ca_file=str(cert_of(tls_server))).close()
    except Exception as e:
        assert not tls_failures(e), e
    with pytest.raises(Exception) as refused:
        sql.connect(**connect).close()
    assert tls_failures(refused.value)


def test_the_connectors_statement_api_backend_over_tls(tls_server, monkeypatch):
    """`use_sea=True`: the connector's (deprecated) backend over the
    Statement Execution API and its sessions, with inline JSON results
    (`use_cloud_fetch=False`; external links are not served)."""
    from databricks import sql

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_of(tls_server)))
    w = WorkspaceClient(host=https_url(tls_server), token=tls_server.token, auth_type="pat")
    warehouse = next(iter(w.warehouses.list())).id
    with sql.connect(server_hostname="127.0.0.1", _port=port_of(tls_server),
                     http_path=f"/sql/1.0/warehouses/{warehouse}", access_token=tls_server.token,
                     _tls_trusted_ca_file=str(cert_of(tls_server)), use_sea=True, use_cloud_fetch=False,
                     _retry_stop_after_attempts_count=1) as conn, conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE TEMPORARY VIEW nums AS SELECT id FROM range(5000)")
        cur.execute("SELECT count(*) AS n, max(id) AS top FROM nums")
        assert cur.fetchall() == [(5000, 4999)]
        cur.execute("SELECT id FROM nums ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == list(range(5000))
