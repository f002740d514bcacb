"""Run an ASGI app under a real uvicorn server on loopback, in a background thread.

Used by tests, benchmarks and the fake upstream: the traffic crosses a real socket.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int | None = None, startup_timeout_s: float = 60
) -> Iterator[str]:
    """Start ``app`` on ``host`` (a free port unless given); yield its base URL; stop it."""
    port = port or free_port(host)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"server on {host}:{port} failed to start")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"server on {host}:{port} did not start in {startup_timeout_s}s")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_in_subprocess(
    args: list[str], *, env: dict[str, str] | None = None, startup_timeout_s: float = 300
) -> Iterator[str]:
    """Run ``intent-router serve ARGS`` in its own process on a free port; yield its URL.

    Benchmarks use it so the router does not share a GIL with the load generator.
    """
    import http.client
    import os
    import subprocess
    import sys
    import tempfile

    port = free_port()
    cmd = [sys.executable, "-m", "intent_router.cli", "-q", "serve", *args, "--port", str(port)]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"router did not start ({' '.join(cmd)}):\n{tail}")
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                finally:
                    conn.close()
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
