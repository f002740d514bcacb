"""A throwaway redis-server on a loopback port, for the cache's Redis tests.

``RedisServer`` starts the real binary (no persistence), waits until it answers, and can be
stopped and started again on the same port to test outages. Tests skip when the binary is
absent (``shutil.which("redis-server")`` is None).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from intent_router.testing.server import free_port

REDIS_BINARY = "redis-server"


def redis_binary() -> str | None:
    return shutil.which(REDIS_BINARY)


class RedisServer:
    """One redis-server process on ``127.0.0.1:port``."""

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 5.0) -> None:
        self._proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=5)
            self._proc = None


@contextmanager
def running_redis(binary: str) -> Iterator[RedisServer]:
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
