"""examples/django end to end, as a user runs it: ``manage.py migrate``, ``runserver``; a real
HTTP request places an order (the task is pushed when the view's transaction commits),
``manage.py resque_work`` (a real worker with the project loaded) performs it, and the order
page reads its result back; the dashboard answers at /admin/resque/, for staff only."""

from __future__ import annotations

import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from resque import layout

pytest.importorskip("django")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "django"
PASSWORD = "correct horse battery"
pytestmark = pytest.mark.slow


class Site:
    """The example project: its environment, its commands, its server, a browser's cookies."""

    def __init__(self, redis_url: str, folder: Path) -> None:
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RESQUE_", "SHOP_"))}
        self.env.update(PYTHONPATH=str(EXAMPLE), RESQUE_REDIS=redis_url, PYTHONUNBUFFERED="1",
                        SHOP_DB=str(folder / "db.sqlite3"),
                        SHOP_RECEIPTS=str(folder / "receipts.txt"),
                        DJANGO_SUPERUSER_PASSWORD=PASSWORD)
        self.server: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirects())

    def manage(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(EXAMPLE / "manage.py"), *args],
                              cwd=self.folder, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def serve(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with open(self.folder / "server.log", "wb") as log:  # the server has its own copy
            self.server = subprocess.Popen(
                [sys.executable, str(EXAMPLE / "manage.py"), "runserver", "--noreload",
                 f"127.0.0.1:{port}"], cwd=self.folder, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                assert self.server.poll() is None, (self.folder / "server.log").read_text()
                time.sleep(0.1)
        raise AssertionError("runserver did not come up")

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str, Any]:
        """``(status, Location, body)``: GET, or POST the form (with the CSRF token)."""
        data = None
        headers = {"Referer": self.base + path}
        if form is not None:
            form = {"csrfmiddlewaretoken": self.csrf_token(), **form}
            data = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=headers)
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, "", response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Location", ""), exc.read().decode()

    def csrf_token(self) -> str:
        return next(c.value for c in self.cookies if c.name == "csrftoken") or ""

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(10)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def site(r: redis.Redis, redis_url: str, tmp_path: Path) -> Iterator[Site]:
    site = Site(redis_url, tmp_path)
    migrated = site.manage("migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    site.serve()
    yield site
    site.stop()


def test_a_request_enqueues_on_commit_and_resque_work_performs_it(
    site: Site, r: redis.Redis
) -> None:
    assert site.request("/orders/")[0] == 200  # the CSRF cookie
    status, _, body = site.request("/orders/", {"email": "ann@example.com"})
    assert status == 202, body
    placed = json.loads(body)
    (raw,) = r.lrange("resque:queue:default", 0, -1)
    job = layout.decode_job(raw, "default")
    assert (job["class"], job["args"], job["id"]) == (
        "orders.tasks.send_receipt", [placed["order"]], placed["task"])
    assert json.loads(site.request(f"/orders/{placed['order']}/")[2])["receipt"] == "READY"

    done = site.manage("resque_work", "--burst", "-v")
    assert done.returncode == 0, done.stdout + done.stderr
    banner = done.stderr.splitlines()[0]  # the worker's banner, then a line per job
    assert ":default:high,default,default:low started: " in banner, done.stderr
    assert ", fork per job" in banner
    line = f"receipt for order {placed['order']} sent to ann@example.com"
    assert (site.folder / "receipts.txt").read_text() == line + "\n"
    status, _, body = site.request(f"/orders/{placed['order']}/")
    assert json.loads(body) == {"order": placed["order"], "receipt": "SUCCESSFUL", "sent": line}


def test_the_dashboard_is_for_staff_behind_the_admin_login(site: Site) -> None:
    status, location, _ = site.request("/admin/resque/")
    assert (status, location) == (302, "/admin/login/?next=/admin/resque/")

    made = site.manage("createsuperuser", "--noinput", "--username", "admin",
                       "--email", "admin@example.com")
    assert made.returncode == 0, made.stderr
    assert site.request("/admin/login/")[0] == 200  # the login form's CSRF cookie
    status, location, _ = site.request("/admin/login/?next=/admin/resque/",
                                       {"username": "admin", "password": PASSWORD})
    assert (status, location) == (302, "/admin/resque/")

    status, _, page = site.request("/admin/resque/")
    assert status == 200
    assert 'href="/admin/resque/queues"' in page  # its links follow the mount
    assert site.request("/admin/resque/stats")[0] == 200


def test_the_dashboard_acts_with_its_own_csrf_token(site: Site, r: redis.Redis) -> None:
    made = site.manage("createsuperuser", "--noinput", "--username", "admin",
                       "--email", "admin@example.com")
    assert made.returncode == 0, made.stderr
    site.request("/admin/login/")
    site.request("/admin/login/", {"username": "admin", "password": PASSWORD})
    page = site.request("/admin/resque/")[2]
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    status, _, _ = site.request("/admin/resque/actions/pause", {"csrf_token": token})
    assert status == 303
    assert r.get("resque:pause-all-workers") == b"true"


def test_manage_py_resque_runs_the_admin_verbs_on_the_backends_redis(
    site: Site, r: redis.Redis
) -> None:
    r.rpush("resque:queue:default", '{"class":"X","args":[]}')
    r.sadd("resque:queues", "default")
    done = site.manage("resque", "queues")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["QUEUE    SIZE", "default  1", "1 queue(s), 1 job(s)"]


def test_resque_scheduler_queues_a_run_after_task_when_due(site: Site, r: redis.Redis) -> None:
    code = ("import datetime; from django.utils import timezone; from orders.models import Order;"
            " from orders.tasks import send_receipt; order = Order.objects.create(email='b@x.y');"
            " later = timezone.now() + datetime.timedelta(seconds=1);"
            " print(send_receipt.using(run_after=later).enqueue(order.pk).id)")
    enqueued = site.manage("shell", "-c", code)
    assert enqueued.returncode == 0, enqueued.stderr
    task_id = enqueued.stdout.split()[-1]  # after what the shell says it imported
    assert r.llen("resque:queue:default") == 0
    scheduler = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "manage.py"), "resque_scheduler", "-i", "0.1"],
        cwd=site.folder, env=site.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while r.llen("resque:queue:default") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.terminate()
        scheduler.wait(10)
    (raw,) = r.lrange("resque:queue:default", 0, -1)
    assert layout.decode_job(raw, "default")["id"] == task_id
