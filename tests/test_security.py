"""Security review: what a payload can make a worker import or call, and where secrets go.

Job resolution: a payload's ``class`` reaches only registered names, or classes and functions
*defined* in a module under an allowed prefix. Not the modules that module imported
(``securityapp.os.system``), not names it re-exports (``securityapp.Popen``), no dunders, no
lookalike prefixes, nothing imported outside the prefixes. Secrets: a password in the Redis
URL never reaches a log line, an error message, a process title or a dashboard page. (The
dashboard's escaping, CSRF and authentication are specified in ``test_web_security.py``.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import securityapp
import setproctitle
from support.faultkit import RedisServer
from support.replies import bytes_list
from support.workerkit import APPS, Workers, wait_for

from resque import Resque, Worker, layout
from resque.errors import JobForbidden, JobNotFound
from resque.jobs import registry

ALLOWED = ["securityapp"]

HOSTILE = [
    "os.system",
    "subprocess.Popen",
    "builtins.eval",
    "importlib.import_module",
    "securityapp.os.system",  # a module the allowed module imported
    "securityapp.os.path.join",
    "securityapp.subprocess.Popen",
    "securityapp.Popen",  # re-exported from subprocess
    "securityapp.evaluate",  # a builtin bound to a name in the allowed module
    "securityapp.__builtins__",
    "securityapp.Archive.__init__",
    "securityapp.__import__",
    "securityapp.Archive.__class__.__subclasses__",
    "securityappevil.x",  # a lookalike of the prefix
    "securityapp..Archive",
    ".securityapp.Archive",
    "securityapp.Archive.",
    "securityapp.Archive\x00",
    "securityapp.Arch ive",
    "securityapp",
    "securityapp.missing_module.Job",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_class_name_is_refused_and_nothing_is_called(name: str) -> None:
    before = set(sys.modules)
    with pytest.raises(JobNotFound):  # JobForbidden is a kind of JobNotFound
        registry.resolve(name, ALLOWED)
    assert not set(sys.modules) - before - {"securityapp.missing_module"}


@pytest.mark.parametrize("name", ["os.system", "securityapp.os.system", "securityapp.Popen",
                                  "securityapp.evaluate", "securityapp.__import__"])
def test_the_refusal_is_forbidden_not_merely_not_found(name: str) -> None:
    with pytest.raises(JobForbidden):
        registry.resolve(name, ALLOWED)


def test_a_module_outside_the_prefixes_is_never_imported() -> None:
    for name in ("antigravity.fly", "this.s", "resque_never_imported.Job"):
        module = name.split(".")[0]
        assert module not in sys.modules
        with pytest.raises(JobForbidden):
            registry.resolve(name, ALLOWED)
        assert module not in sys.modules


def test_what_the_application_allowed_still_resolves() -> None:
    assert registry.resolve("securityapp.Archive", ALLOWED) is securityapp.Archive
    assert registry.resolve("securityapp.task", ALLOWED) is securityapp.task
    assert registry.resolve("Registered", []) is registry.get("Registered")


def test_a_worker_given_hostile_payloads_records_them_as_failures_and_runs_nothing(
    r: redis.Redis, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    title = setproctitle.getproctitle()
    securityapp.CALLS.clear()
    client = Resque(r, allowed_modules=ALLOWED)
    for name in HOSTILE:
        r.rpush("resque:queue:sec", layout.encode_job(name, [f"touch {marker}"]))
    client.enqueue_to("sec", "securityapp.Archive", "fine")
    try:
        Worker(["sec"], resque=client, fork=False, interval=0).work()
    finally:
        setproctitle.setproctitle(title)
    assert not marker.exists()
    assert securityapp.CALLS == [("Archive", ("fine",))]
    failed = [layout.decode(f) for f in r.lrange("resque:failed", 0, -1)]
    assert [f["payload"]["class"] for f in failed] == HOSTILE
    assert {f["exception"] for f in failed} <= {"Resque::JobForbidden", "Resque::JobNotFound"}


# --- secrets ----------------------------------------------------------------------------------

SECRET = "pw-Secret-4b2e"


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", "--requirepass", SECRET,
                         client_kwargs={"password": SECRET}).start()
    yield server
    server.stop()


def _tree(pid: int) -> list[int]:
    """A process and its descendants, by /proc."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found += _tree(int(entry.name))
    return found


def _cmdlines(pid: int) -> dict[int, str]:
    lines = {}
    for p in _tree(pid):
        try:
            lines[p] = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            pass
    return lines


@pytest.mark.parametrize("mode", ["--fork", "--no-fork"])
def test_a_password_in_the_redis_url_never_shows_in_titles_logs_or_failures(
    r: redis.Redis, redis_url: str, locked_redis: RedisServer, tmp_path: Path, mode: str
) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{locked_redis.port}/0"
    farm = Workers(url, tmp_path)
    try:
        client = Resque(url)
        client.enqueue_to("low", "Sleep", 1.0, "hold")
        client.enqueue_to("low", "Fail", "x")
        worker = farm.start("low", mode, "-vv", env={"WORKERAPP_REDIS": redis_url})
        worker.wait_title("Forked" if mode == "--fork" else "Processing", timeout=15)
        lines = _cmdlines(worker.pid)
        assert lines and not [line for line in lines.values() if SECRET in line], lines
        wait_for(lambda: locked_redis.client().llen("resque:failed") == 1, timeout=15)
        locked_redis.stop()  # an outage: the log names the server, never the password
        time.sleep(1.0)
        locked_redis.start()
        wait_for(lambda: "Redis is back" in worker.output(), timeout=20)
        worker.signal(15)
        worker.wait(20)
        assert SECRET not in worker.output()
        assert "redis://127.0.0.1" in worker.output()
        stored = b"".join(bytes_list(locked_redis.client().lrange("resque:failed", 0, -1)))
        assert SECRET.encode() not in stored
    finally:
        farm.cleanup()


def test_the_dashboard_never_shows_the_password(locked_redis: RedisServer) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from resque.web import create_app

    url = f"redis://:{SECRET}@127.0.0.1:{locked_redis.port}/0"
    Resque(url).enqueue_to("low", "Hello", 1)
    with TestClient(create_app(url), base_url="http://127.0.0.1") as web:
        for path in ("/", "/stats", "/stats/redis", "/stats.txt", "/queues", "/workers",
                     "/live.json", "/stats/keys"):
            response = web.get(path)
            assert response.status_code == 200, path
            assert SECRET not in response.text, path
    locked_redis.stop()
    with TestClient(create_app(url), base_url="http://127.0.0.1") as web:
        down = web.get("/")
        assert down.status_code == 503 and SECRET not in down.text


def _leaks(args: list[str], url: str, env: dict[str, str]) -> dict[int, str]:
    process = subprocess.Popen([sys.executable, "-m", "resque", *args, "--redis", url],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        # Until every process of the tree has a title of its own (or 15 s pass), then a
        # moment more for any process started late (a fork server).
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
                c.startswith(sys.executable) for c in _cmdlines(process.pid).values()):
            time.sleep(0.1)
        time.sleep(0.5)
        return {p: c for p, c in _cmdlines(process.pid).items() if SECRET in c}
    finally:
        os.killpg(process.pid, 9)
        process.wait()


@pytest.mark.parametrize("args", [
    pytest.param(["work", "-q", "low", "--app", "workerapp"], id="work"),
    pytest.param(["pool", "-w", "low:1", "--app", "workerapp"], id="pool"),
    pytest.param(["scheduler"], id="scheduler"),
    pytest.param(["work", "-q", "low", "--app", "workerapp", "--count", "2"], id="count"),
    pytest.param(["web", "--port", "0"], id="web"),
])
def test_no_process_shows_the_password_once_started(
    locked_redis: RedisServer, args: list[str]
) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{locked_redis.port}/0"
    env = {**os.environ, "PYTHONPATH": str(APPS), "WORKERAPP_REDIS": url}
    assert _leaks(args, url, env) == {}
