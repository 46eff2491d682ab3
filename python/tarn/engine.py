"""Runs one Sail Spark Connect engine for a tarn cluster.

tarn starts this with the cluster's Python environment, reads the first line
of stdout ({"port": N}) and keeps stdin open. The engine stops when tarn
closes stdin (or dies, which closes it too), or on SIGTERM/SIGINT.
"""

import json
import signal
import sys
import threading


def main() -> int:
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer(ip="127.0.0.1", port=0)
    server.start(background=True)
    _host, port = server.listening_address
    print(json.dumps({"port": port}), flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def wait_for_stdin_eof() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        stop.set()

    threading.Thread(target=wait_for_stdin_eof, daemon=True).start()
    while not stop.wait(1.0):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
