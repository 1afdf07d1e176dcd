"""examples/fastapi end to end: uvicorn serves the app, a real HTTP request enqueues through the
asyncio client, a real worker (``resque work --app jobs``) performs the job, and a request that
awaits the result gets it; the dashboard is mounted behind the app's check."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from resque import layout

pytest.importorskip("fastapi")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi"
TOKEN = "s3cret-token"
pytestmark = pytest.mark.slow


class App:
    def __init__(self, redis_url: str, folder: Path) -> None:
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RESQUE_")}
        self.env.update(PYTHONPATH=str(EXAMPLE), RESQUE_REDIS=redis_url, ADMIN_TOKEN=TOKEN,
                        PYTHONUNBUFFERED="1")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.log = open(folder / "uvicorn.log", "wb")  # closed in stop()
        self.server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--port", str(self.port)],
            cwd=EXAMPLE, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.server.poll() is None and time.monotonic() < deadline, (
                    (folder / "uvicorn.log").read_text())
                time.sleep(0.1)

    def request(self, method: str, path: str,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.port}{path}"
        request = urllib.request.Request(url, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = response.read().decode()
                kind = response.headers.get("content-type", "")
                return response.status, json.loads(body) if "json" in kind else body
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def worker(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "resque", "work", "--app", "jobs", "-q", "reports",
             "--burst"], cwd=self.folder, env=self.env, capture_output=True, text=True,
            timeout=60)

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait(10)
        self.log.close()


@pytest.fixture
def app(r: redis.Redis, redis_url: str, tmp_path: Path) -> Iterator[App]:
    served = App(redis_url, tmp_path)
    yield served
    served.stop()


def test_a_request_enqueues_a_worker_performs_and_a_request_awaits_the_result(
    app: App, r: redis.Redis
) -> None:
    status, body = app.request("POST", "/reports/2026-11")
    assert status == 202, body
    job_id = body["job"]
    (raw,) = r.lrange("resque:queue:reports", 0, -1)
    payload = layout.decode_job(raw, "reports")
    assert (payload["class"], payload["args"], payload["id"], payload["track"]) == (
        "jobs.monthly_report", ["2026-11", {"__kwargs__": True, "currency": "SEK"}], job_id,
        86400)
    assert app.request("GET", f"/reports/jobs/{job_id}") == (200, {"status": "queued"})

    awaited: list[tuple[int, Any]] = []
    waiter = threading.Thread(
        target=lambda: awaited.append(app.request("GET", f"/reports/jobs/{job_id}?wait=30")))
    waiter.start()
    time.sleep(0.3)  # the request is waiting on pub/sub before the worker starts
    done = app.worker()
    assert done.returncode == 0, done.stdout + done.stderr
    waiter.join(30)
    assert awaited == [(200, {"status": "finished", "report": {
        "month": "2026-11", "currency": "SEK", "orders": 49}})]


def test_an_unknown_job_is_404(app: App) -> None:
    assert app.request("GET", "/reports/jobs/nope")[0] == 404


def test_the_dashboard_answers_only_with_the_admin_token(app: App) -> None:
    assert app.request("GET", "/resque/")[0] == 403
    status, page = app.request("GET", "/resque/", {"x-admin-token": TOKEN})
    assert status == 200
    assert 'href="/resque/queues"' in page
    assert app.request("GET", "/resque/queues", {"x-admin-token": "wrong"})[0] == 403
