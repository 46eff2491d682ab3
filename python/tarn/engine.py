"""Runs one Spark Connect engine for a tarn cluster.

tarn starts this with the cluster's Python environment, reads the first line
of stdout ({"port": N}) and keeps stdin open. The engine stops when tarn
closes stdin (or dies, which closes it too), or on SIGTERM/SIGINT.

TARN_ENGINE names the backend: Sail in this process (`sail`,
`sail-cluster`), or an Apache Spark Connect server (`spark`) that this
program starts with SPARK_HOME's `spark-submit` against TARN_SPARK_MASTER,
with the properties tarn wrote to TARN_SPARK_PROPERTIES (reporting the
executors from TARN_SPARK_WATCH_EXECUTORS on, when set); or, when
TARN_SPARK_CONNECT names one (host:port), a server someone else runs, to
which this program only forwards connections.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

SPARK_CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"


def stop_event() -> threading.Event:
    """Set on SIGTERM/SIGINT or when stdin closes."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def wait_for_stdin_eof() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        stop.set()

    threading.Thread(target=wait_for_stdin_eof, daemon=True).start()
    return stop


def run_sail() -> int:
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer(ip="127.0.0.1", port=0)
    server.start(background=True)
    _host, port = server.listening_address
    print(json.dumps({"port": port}), flush=True)
    stop = stop_event()
    while not stop.wait(1.0):
        pass
    server.stop()
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def active_executors(ui_port: int) -> int | None:
    """Executors (not the driver) the server holds, from its status API."""
    base = f"http://127.0.0.1:{ui_port}/api/v1/applications"
    try:
        with urllib.request.urlopen(base, timeout=5) as r:
            apps = json.load(r)
        with urllib.request.urlopen(f"{base}/{apps[0]['id']}/executors", timeout=5) as r:
            executors = json.load(r)
    except (OSError, ValueError, LookupError):
        return None
    return sum(1 for e in executors if e.get("id") != "driver" and e.get("isActive", True))


def report_executors(ui_port: int, initial: int, stop: threading.Event) -> None:
    """Prints {"workers": n, "previous": p} each time dynamic allocation
    changes the executors; tarn records it as the cluster's autoscaling."""
    previous = initial
    while not stop.wait(2.0):
        current = active_executors(ui_port)
        if current is not None and current != previous:
            print(json.dumps({"workers": current, "previous": previous}), flush=True)
            previous = current


def run_spark() -> int:
    home = os.environ["SPARK_HOME"]
    port, ui_port = free_port(), free_port()
    command = [
        os.path.join(home, "bin", "spark-submit"),
        "--class", SPARK_CONNECT_SERVER,
        "--master", os.environ["TARN_SPARK_MASTER"],
        "--properties-file", os.environ["TARN_SPARK_PROPERTIES"],
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", f"spark.ui.port={ui_port}",
        "spark-internal",
    ]
    # The JVM writes to the engine log (our stderr); stdout carries only the
    # port. Its own session, so that a stop reaches every process it forks.
    server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sys.stderr, start_new_session=True)
    print(json.dumps({"port": port}), flush=True)
    stop = stop_event()
    if os.environ.get("TARN_SPARK_WATCH_EXECUTORS"):
        initial = int(os.environ["TARN_SPARK_WATCH_EXECUTORS"])
        threading.Thread(target=report_executors, args=(ui_port, initial, stop), daemon=True).start()
    while not stop.wait(0.5):
        code = server.poll()
        if code is not None:
            print(f"the Spark Connect server exited with {code}", file=sys.stderr, flush=True)
            # Not sys.exit: the thread reading stdin would hold up shutdown.
            os._exit(code or 1)
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=4)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    return 0


def pipe(source: socket.socket, sink: socket.socket) -> None:
    buffer = bytearray(1 << 16)
    view = memoryview(buffer)
    try:
        while n := source.recv_into(buffer):
            sink.sendall(view[:n])
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def run_route(target: str) -> int:
    """Forwards each connection on a loopback port to `target`."""
    host, _, port = target.rpartition(":")
    listener = socket.create_server(("127.0.0.1", 0))
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    print(f"routing Spark Connect to {target}", file=sys.stderr, flush=True)

    def accept() -> None:
        while True:
            client, _ = listener.accept()
            try:
                server = socket.create_connection((host, int(port)), timeout=30)
            except OSError as e:
                print(f"cannot reach {target}: {e}", file=sys.stderr, flush=True)
                client.close()
                continue
            server.settimeout(None)
            for a, b in ((client, server), (server, client)):
                a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    stop = stop_event()
    while not stop.wait(1.0):
        pass
    os._exit(0)


def main() -> int:
    if os.environ.get("TARN_SPARK_CONNECT"):
        return run_route(os.environ["TARN_SPARK_CONNECT"])
    if os.environ.get("TARN_ENGINE") == "spark":
        return run_spark()
    return run_sail()


if __name__ == "__main__":
    sys.exit(main())
