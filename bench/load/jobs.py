"""The workloads of bench/workloads.py as plain functions, the same code for every framework.

No framework is imported here: each framework's app (``ours.py``, ``rq``'s dotted paths,
``dramatiq_app.py``, ``celery_app.py``, ``arq_app.py``) wraps these, so every framework runs
exactly the same job. Each run of a job appends ``enqueued start end`` (``time.time()``) to a
file of its own process under ``BENCH_OUT`` (one ``write`` on an ``O_APPEND`` file: atomic for
a line, no network, the same negligible cost everywhere), which the bench reads back.

Workloads: ``io_sleep`` waits 10 ms; ``io_http`` GETs ``/`` from the bench's HTTP server
(``BENCH_HTTP``, ``host:port``), which answers after 10 ms; ``aio_sleep``/``aio_http`` are
the same as ``async def``; ``cpu`` spends ``units`` x 25,000 loop iterations of pure Python
(1-1.5 ms here).
"""

from __future__ import annotations

import asyncio
import http.client
import os
import time

IO_SECONDS = 0.01
_fds: dict[int, int] = {}


def _record(enqueued: float, start: float) -> None:
    pid = os.getpid()
    fd = _fds.get(pid)
    if fd is None:
        path = os.path.join(os.environ["BENCH_OUT"], str(pid))
        fd = _fds[pid] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, f"{enqueued!r} {start!r} {time.time()!r}\n".encode())


def _server() -> tuple[str, int]:
    host, _, port = os.environ["BENCH_HTTP"].rpartition(":")
    return host, int(port)


def io_sleep(enqueued: float, units: int = 0) -> None:
    start = time.time()
    time.sleep(IO_SECONDS)
    _record(enqueued, start)


def io_http(enqueued: float, units: int = 0) -> None:
    start = time.time()
    connection = http.client.HTTPConnection(*_server(), timeout=10)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
    finally:
        connection.close()
    _record(enqueued, start)


async def aio_sleep(enqueued: float, units: int = 0) -> None:
    start = time.time()
    await asyncio.sleep(IO_SECONDS)
    _record(enqueued, start)


async def aio_http(enqueued: float, units: int = 0) -> None:
    start = time.time()
    reader, writer = await asyncio.open_connection(*_server())
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
        await writer.drain()
        await reader.read()
    finally:
        writer.close()
    _record(enqueued, start)


SPIN = 25_000  # iterations of the loop below per unit: 1-1.5 ms of CPU here


def cpu(enqueued: float, units: int = 1) -> None:
    start = time.time()
    total = 0
    for i in range(SPIN * units):
        total += i * i
    _record(enqueued, start)


KINDS = {"io_sleep": io_sleep, "io_http": io_http, "aio_sleep": aio_sleep,
         "aio_http": aio_http, "cpu": cpu}
