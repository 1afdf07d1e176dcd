"""Helpers for the dashboard's tests: a test client, CSRF-carrying POSTs, Ruby-shaped data
written with the wire contract, and small readers of the rendered pages."""

from __future__ import annotations

import html
import re
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

import redis
from starlette.testclient import TestClient

from resque import Resque, layout
from resque.web import create_app
from resque.web.security import CSRF_COOKIE

HOSTILE = '<script>alert("x")</script>'
HOSTILE_NAME = '"><img src=x onerror=alert(1)>'


BASE_URL = "http://127.0.0.1:5678"  # a loopback name: the only kind answered by default


def client(resque: Resque, **settings: Any) -> TestClient:
    """A test client of a fresh app on this farm (settings as for ``create_app``)."""
    return TestClient(create_app(resque, **settings), base_url=BASE_URL, follow_redirects=False)


def cookie_name(web: TestClient) -> str | None:
    """The name of the CSRF cookie this client holds (one name per dashboard address)."""
    return next((name for name in web.cookies if name.startswith(CSRF_COOKIE + "_")), None)


def token(web: TestClient, path: str = "/") -> str:
    """The CSRF token the dashboard gave this client (a GET first, if it has none)."""
    if cookie_name(web) is None:
        assert web.get(path).status_code == 200
    name = cookie_name(web)
    assert name, "the dashboard set no CSRF cookie"
    found = web.cookies.get(name)
    assert found, "the dashboard set an empty CSRF cookie"
    return found


def post(web: TestClient, path: str, **fields: Any) -> Any:
    """POST a form the way the page's own form does: with the token and a ``next``."""
    data = {"csrf_token": token(web), "next": "/", **{k: str(v) for k, v in fields.items()}}
    return web.post(path, data=data)


def flash(response: Any) -> str:
    """The ``done`` code of an action's redirect."""
    assert response.status_code == 303, response.text
    found = re.search(r"[?&]done=([a-z_]+)", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def hidden(page: str, name: str) -> list[str]:
    """Values of the hidden inputs named ``name`` in a page, unescaped."""
    return [html.unescape(v) for v in re.findall(
        rf'<input type="hidden" name="{re.escape(name)}" value="([^"]*)">', page)]


def live_counts(page: str) -> dict[str, str]:
    return {name: value for name, value in re.findall(
        r'data-live-count="([a-z_]+)">([^<]*)<', page)}


def queue_sizes(page: str) -> dict[str, int]:
    return {html.unescape(name): int(size.replace(",", "")) for name, size in re.findall(
        r'data-queue-size data-queue="([^"]*)">([\d,]+)<', page)}


def number(text: str) -> int:
    return int(text.replace(",", ""))


# --- data shaped as Ruby writes it -----------------------------------------------------------


def add_worker(
    r: redis.Redis,
    keys: layout.Keys,
    worker: str,
    *,
    job: tuple[str, str, list[Any]] | None = None,
    processed: int = 0,
    failed: int = 0,
    heartbeat: float | None = None,
    started: float | None = None,
) -> None:
    """Register a worker as Ruby does; ``job`` = (queue, class, args) makes it working."""
    with r.pipeline(transaction=False) as pipe:
        pipe.sadd(keys.workers, worker)
        pipe.set(keys.worker_started(worker), layout.started_at(started))
        if heartbeat is not None:
            pipe.hset(keys.heartbeat, worker, layout.heartbeat_at(heartbeat))
        if processed:
            pipe.set(keys.worker_stat("processed", worker), processed)
        if failed:
            pipe.set(keys.worker_stat("failed", worker), failed)
        if job is not None:
            queue, class_name, args = job
            pipe.set(keys.worker(worker),
                     layout.working_on(queue, layout.encode_job(class_name, args)))
        pipe.execute()


def failure_record(
    class_name: str = "Fail",
    args: list[Any] | None = None,
    *,
    queue: str = "low",
    error: str = "boom",
    exception: str = "RuntimeError",
    worker: str = "vm:1210:high,low",
    backtrace: list[str] | None = None,
    now: float | None = None,
) -> str:
    return layout.failure_record(
        payload={"class": class_name, "args": args if args is not None else [1]},
        exception=exception, error=error,
        backtrace=backtrace if backtrace is not None else ["app/jobs.rb:1:in `perform'"],
        worker=worker, queue=queue, now=now,
    )


def add_failure(r: redis.Redis, keys: layout.Keys, list_name: str = "failed",
                **record: Any) -> None:
    """Append a failure record; a list other than ``failed`` joins ``failed_queues``."""
    r.rpush(keys.failure_list(list_name), failure_record(**record))
    if list_name != layout.FAILED_LIST:
        r.sadd(keys.failed_queues, list_name)


def wait_until_up(url: str, process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """Wait for a `resque web` process to answer (any HTTP status), or fail with its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"resque web exited: {output}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError as answered:
            answered.close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"resque web did not answer on {url}")


def stop_server(process: subprocess.Popen[Any]) -> None:
    """TERM a server process, wait for it, and close its pipes (an open one is a
    ResourceWarning, an error in this suite)."""
    process.terminate()
    process.wait(10)
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
