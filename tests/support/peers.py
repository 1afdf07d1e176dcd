"""The real peers, found and driven: Ruby resque 3.0 (with resque-web), resque-scheduler 5.0
and Perl Resque, unmodified, in ``../shared/peers`` beside the project's root (``.ci/run``
installs what they need with that folder's ``setup.sh``).

Tests that drive them call ``require_*``, which skips the test with the reason when a peer
cannot run here (a clone outside this workspace); with ``RESQUE_REQUIRE_PEERS=1`` (set by
``.ci/run`` where the peers are installed) it fails instead, so a broken install cannot pass
as a skip. ``ruby``/``perl`` run one command of the drivers in tests/ruby/peers.rb and
tests/perl/peers.pl; ``ResqueWeb`` and ``ruby_scheduler`` start the long-running ones.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import redis

from resque.embedded import free_port
from support.workerkit import APPS, WorkerProcess, Workers

ROOT = Path(__file__).resolve().parent.parent.parent
PEERS = Path(os.environ.get("RESQUE_PEERS", ROOT.parent / "shared" / "peers"))
RUBY_RESQUE = PEERS / "ruby-resque-3.0"
RUBY_SCHEDULER = PEERS / "resque-scheduler-5.0"
PERL_RESQUE = PEERS / "resque-perl"


@cache
def _probe(command: tuple[str, ...]) -> str | None:
    """None when ``command`` runs cleanly, else why it does not."""
    if shutil.which(command[0]) is None:
        return f"{command[0]} is not installed (bash {PEERS}/setup.sh installs it)"
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"{' '.join(command)} failed: {done.stderr.strip()[:300]}"
    return None


def _require(folder: Path, command: tuple[str, ...]) -> str:
    reason = (f"the real peer is absent: no {folder} (set RESQUE_PEERS to its folder)"
              if not folder.is_dir() else _probe(command))
    if reason and os.environ.get("RESQUE_REQUIRE_PEERS") == "1":
        pytest.fail(f"RESQUE_REQUIRE_PEERS=1 but {reason}", pytrace=False)
    if reason:
        pytest.skip(reason)
    return str(folder / "lib")


def require_ruby_resque() -> str:
    """Ruby resque 3.0's ``lib`` folder, for ``ruby -I``."""
    lib = RUBY_RESQUE / "lib"
    return _require(RUBY_RESQUE, ("ruby", "-I", str(lib), "-e", 'require "resque"'))


def require_ruby_scheduler() -> tuple[str, str]:
    """``(resque lib, resque-scheduler lib)``, for ``ruby -I ... -I ...``."""
    resque = require_ruby_resque()
    lib = RUBY_SCHEDULER / "lib"
    _require(RUBY_SCHEDULER,
             ("ruby", "-I", resque, "-I", str(lib), "-e", 'require "resque-scheduler"'))
    return resque, str(lib)


def require_perl_resque() -> str:
    """Perl Resque's ``lib`` folder, for ``perl -I``."""
    lib = PERL_RESQUE / "lib"
    return _require(PERL_RESQUE, ("perl", "-I", str(lib), "-MResque", "-e", "1"))


# --- driving the peers ------------------------------------------------------------------------

TESTS = ROOT / "tests"
RUBY_DRIVER = TESTS / "ruby" / "peers.rb"
PERL_DRIVER = TESTS / "perl" / "peers.pl"


def server_address(redis_url: str) -> str:
    """``host:port`` of a ``redis://host:port/db`` URL: the only form Perl Resque takes."""
    parsed = urlsplit(redis_url)
    assert parsed.hostname and parsed.port and parsed.path in ("", "/", "/0"), redis_url
    return f"{parsed.hostname}:{parsed.port}"


def _run(command: list[str], timeout: float) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command[:4])} ... failed:\n{done.stderr}"
    return done.stdout


def ruby(redis_url: str, *args: str, scheduler: bool = False, timeout: float = 60) -> str:
    """Run one command of tests/ruby/peers.rb (with resque-scheduler on the load path if
    ``scheduler``); returns its stdout, fails the test on a non-zero exit."""
    libs = require_ruby_scheduler() if scheduler else (require_ruby_resque(),)
    includes = [part for lib in libs for part in ("-I", lib)]
    return _run(["ruby", *includes, str(RUBY_DRIVER), redis_url, *args], timeout)


def perl(redis_url: str, *args: str, timeout: float = 60) -> str:
    """Run one command of tests/perl/peers.pl; returns its stdout."""
    lib = require_perl_resque()
    return _run(["perl", "-I", lib, str(PERL_DRIVER), server_address(redis_url), *args], timeout)


def python_worker(workers: Workers, queues: str, *args: str) -> WorkerProcess:
    """Our worker with the peer jobs (apps/peers_app.py), run until the queues are empty."""
    return workers.run(queues, "--app", "peers_app", *args,
                       env={"RESQUE_REDIS": workers.redis_url})


def ruby_app_worker(redis_url: str, queues: str, *args: str, env: dict[str, str] | None = None
                    ) -> subprocess.Popen[bytes]:
    """Our worker with the jobs tests/ruby/harness.rb enqueues (``--app ruby_app``), started;
    the caller waits for it or kills it."""
    environment = dict(os.environ, PYTHONPATH=str(APPS), RESQUE_REDIS=redis_url, **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "resque", "work", "--app", "ruby_app", "-q", queues, *args],
        env=environment,
    )


def resque_cli(redis_url: str, *args: str) -> str:
    """``python -m resque ARGS --redis URL``; returns its stdout."""
    return _run([sys.executable, "-m", "resque", *args, "--redis", redis_url], 60)


def ran(r: redis.Redis, language: str) -> list[Any]:
    """The args each ``Echo``/``Flaky`` job performed in ``language`` recorded, in order."""
    return [json.loads(item) for item in r.lrange(f"resque:peers:ran:{language}", 0, -1)]


class PeerProcesses:
    """Long-running peer processes of one test (resque-web, schedulers, serving workers): each
    in its own session with its output in a file, all killed at the end of the test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        with open(self.log_path(name), "wb") as sink:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})}, cwd=self.directory, start_new_session=True)
        self.started.append(process)
        return process

    def log_path(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def log(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def cleanup(self) -> None:
        for process in self.started:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(10)


class ResqueWeb:
    """Ruby's resque-web (Sinatra on WEBrick) serving one Redis on a free port; with
    ``scheduler``, with resque-scheduler's Schedule and Delayed tabs and the peer job classes
    of tests/ruby/peers.rb loaded, as an app would set it up."""

    def __init__(self, processes: PeerProcesses, redis_url: str, scheduler: bool = False
                 ) -> None:
        libs = require_ruby_scheduler() if scheduler else (require_ruby_resque(),)
        extras = ["-r", "resque/scheduler/server", "-r", str(RUBY_DRIVER)] if scheduler else []
        self.port = free_port()
        app_dir = processes.directory / "resque-web"
        self.process = processes.start("resque-web", [
            "ruby", *[part for lib in libs for part in ("-I", lib)], *extras,
            str(RUBY_RESQUE / "bin" / "resque-web"), "-F", "-L", "-s", "webrick",
            "-p", str(self.port), "-r", redis_url, "--app-dir", str(app_dir),
        ], env={"PEERS_REDIS_URL": redis_url})
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/overview")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"resque-web did not start:\n{processes.log('resque-web')}") from None
                time.sleep(0.1)

    def get(self, path: str) -> str:
        """GET a page (following redirects, as a browser does) and return its HTML."""
        return self._open(urllib.request.Request(f"http://127.0.0.1:{self.port}{path}"))

    def post(self, path: str, **fields: str) -> str:
        """Submit a form of the page, as its button does; returns the page it leads to."""
        return self._open(urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=urlencode(fields).encode()))

    def _open(self, request: urllib.request.Request) -> str:
        # A page resque-web cannot render is a 500: urlopen raises, and the test fails.
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, f"{request.full_url}: {response.status}"
            body: bytes = response.read()
        return body.decode("utf-8")


def ruby_scheduler(processes: PeerProcesses, redis_url: str, name: str, *args: str,
                   lock_timeout: int = 180) -> subprocess.Popen[bytes]:
    """resque-scheduler 5.0's own executable, with tests/ruby/peers.rb as its initializer
    (the connection and the job classes); ``args`` are its options (``-i 0.2 -D``...)."""
    resque, scheduler = require_ruby_scheduler()
    return processes.start(name, [
        "ruby", "-I", resque, "-I", scheduler, str(RUBY_SCHEDULER / "exe" / "resque-scheduler"),
        "-I", str(RUBY_DRIVER), "-v", *args,
    ], env={"PEERS_REDIS_URL": redis_url, "LOCK_TIMEOUT": str(lock_timeout)})


# --- payloads ---------------------------------------------------------------------------------

# Args of every JSON type that Ruby keeps exactly: unicode beyond the BMP, escapes, integers
# past 64 bits, floats in both of Ruby's notations, nesting, empty containers.
EVERY_JSON_TYPE: list[Any] = [
    "plain", "ünïcödé ✓ 日本語 😀", 'quote" back\\slash\nnew\ttab\x00nul\u2028ls </script>', "",
    "1e-07 and 1000000000000000.0 stay text",
    0, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 + 1, 10**30, -(10**25),
    0.1, -2.5, 1.0, -0.0, 3.141592653589793, 0.30000000000000004, 1e-7, 1.5e-5, 1e15,
    1234567890123456.7, 1e16, 1.5e300, 5e-324,
    True, False, None,
    [], {}, [1, [2, [3, [None, [True]]]]],
    {"nested": {"list": [1, "two", 3.5, None], "ünï": {"deep": {}, "": []}}, "n": 0},
    {"floats": {"tiny": 1e-7, "whole": 2e15, "big": [1e22, -1.5e-300]}},
]

# What Perl Resque keeps exactly. Its JSON::XS writes floats with 15 significant digits, whole
# floats as integers (1.0 -> 1, -0.0 -> -0) and integers outside 64 bits as strings, so the
# other values of EVERY_JSON_TYPE change when Perl re-encodes them (see test_peers_perl.py).
PERL_EXACT: list[Any] = [
    "plain", "ünïcödé ✓ 日本語 😀", 'quote" back\\slash\nnew\ttab\x00nul\u2028ls </script>', "",
    0, -1, 2**31, 2**53 + 1, 2**63 - 1,
    0.1, -2.5, 3.14159265358979, 1.5e-5, 1.5e300,
    True, False, None,
    [], {}, [1, [2, [3, [None, [True]]]]],
    {"nested": {"list": [1, "two", 3.5, None], "ünï": {"deep": {}, "": []}}, "n": 0},
]


def typed(value: Any) -> Any:
    """``value`` with every scalar paired with its type, so that 1 != 1.0 != True, -0.0
    != 0.0, and a big integer that came back as a float or a string does not compare equal."""
    if isinstance(value, list):
        return ["list", [typed(item) for item in value]]
    if isinstance(value, dict):
        return ["dict", {key: typed(item) for key, item in value.items()}]
    if isinstance(value, float):
        return ["float", repr(value)]
    return [type(value).__name__, value]
