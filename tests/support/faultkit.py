"""Faults for the reliability tests: a TCP proxy that loses replies, and Redis servers that
can be stopped, frozen and restarted in place.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from resque.embedded import EmbeddedRedis, find_redis_server, free_port


class ReplyDropper:
    """A TCP proxy in front of Redis that can lose one reply.

    ``arm(marker, skip)``: the ``skip + 1``-th request containing ``marker`` is passed on to
    Redis, which runs it, but its reply never reaches the client: both connections are
    closed instead, as when a network cuts between the two. Everything else is relayed.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._marker: bytes | None = None
        self._skip = 0
        self._lock = threading.Lock()
        self.dropped = 0
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes, skip: int = 0) -> None:
        with self._lock:
            self._marker, self._skip = marker, skip

    def _take(self, data: bytes) -> bool:
        with self._lock:
            if self._marker is None or self._marker not in data:
                return False
            if self._skip:
                self._skip -= 1
                return False
            self._marker = None
            self.dropped += 1
            return True

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            cut = threading.Event()
            threading.Thread(target=self._requests, args=(client, server, cut),
                             daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client, cut),
                             daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket,
                  cut: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                drop = self._take(data)
                if drop:
                    cut.set()  # from now on nothing goes back to the client
                server.sendall(data)
                if drop:
                    time.sleep(0.05)  # Redis runs it...
                    break  # ...and the connection dies before the reply is read
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _replies(server: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if cut.is_set():
                    break
                client.sendall(data)
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._closing = True
        self.listener.close()


@contextlib.contextmanager
def own_redis(directory: Path, **options: object) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own, with the append-only file on, stopped at the end."""
    server = EmbeddedRedis(directory, persistent=True, **options).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def stop(server: EmbeddedRedis) -> None:
    """A graceful stop (SIGTERM: Redis fsyncs its append-only file and exits)."""
    assert server.process is not None
    server.process.terminate()
    server.process.wait(10)


def freeze(server: EmbeddedRedis) -> None:
    """SIGSTOP: the port still accepts connections, but nothing answers."""
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)


def thaw(server: EmbeddedRedis) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGCONT)


class RedisServer:
    """A redis-server (or, with ``sentinel=True``, a Sentinel) with any arguments, on
    loopback, for the TLS, ACL and Sentinel tests. ``client_kwargs`` are what a client needs
    to talk to it (TLS files, a username and password); ``start`` waits until it answers."""

    def __init__(
        self,
        directory: Path,
        *args: str,
        binary: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        sentinel_config: str | None = None,
        tls: bool = False,
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.binary = binary or find_redis_server()
        self.args = list(args)
        self.client_kwargs = client_kwargs or {}
        self.sentinel_config = sentinel_config
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        log = str(self.directory / "redis.log")
        if self.sentinel_config is not None:
            config = self.directory / "sentinel.conf"
            config.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
                              f"logfile {log}\n{self.sentinel_config}\n")
            return [self.binary, str(config), "--sentinel"]
        port = ["--port", "0", "--tls-port", str(self.port)] if self.tls else [
            "--port", str(self.port)]
        return [self.binary, *port, "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", log,
                *self.args]

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **{**self.client_kwargs,
                                                                 **kwargs})

    def start(self, timeout: float = 15.0) -> RedisServer:
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()  # a restart after kill()
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        client = self.client(socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return self
                except (redis.ConnectionError, redis.ResponseError):
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        logged = self.log()[-2000:]
                        error = self.process.stderr.read().decode() if (
                            self.process.poll() is not None and self.process.stderr) else ""
                        self.stop()
                        raise RuntimeError(
                            f"{self.command()} did not start: {error}{logged}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()
