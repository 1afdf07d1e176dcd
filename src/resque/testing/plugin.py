"""The pytest plugin (entry point ``pytest11``: loaded wherever resque is installed).

Fixtures, all opt-in (a test that names none of them starts nothing):

``resque_redis_url``  (session) a throwaway redis-server from ``resque.embedded``, or the
                      Redis that ``RESQUE_TEST_REDIS`` names (its data is left alone: each
                      test gets a namespace of its own).
``resque_clock``      a ``Clock`` standing still at the real time until the test moves it.
``resque_client``     a ``TestResque`` on a fresh namespace, following ``resque_clock``, and
                      the default client for the test (so ``task.enqueue`` goes there); its
                      keys are deleted afterwards. ``drain()`` performs what is queued.
``resque_fake``       a ``FakeResque``, the default client for the test: enqueues are
                      recorded, not written; ``assert_enqueued``, ``drain()``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from resque import tasks
from resque.testing.clock import Clock

if TYPE_CHECKING:  # imported by the fixtures that use them: loading the plugin stays light
    from resque.testing.fake import FakeResque
    from resque.testing.kit import TestResque

TEST_REDIS_VARIABLE = "RESQUE_TEST_REDIS"


@pytest.fixture(scope="session")
def resque_redis_url() -> Iterator[str]:
    url = os.environ.get(TEST_REDIS_VARIABLE)
    if url:
        yield url
        return
    from resque.embedded import EmbeddedRedis

    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def resque_clock() -> Clock:
    return Clock()


@pytest.fixture
def resque_client(resque_redis_url: str, resque_clock: Clock) -> Iterator[TestResque]:
    from resque.testing.kit import TestResque

    client = TestResque(resque_redis_url, namespace=f"test-{secrets.token_hex(6)}",
                        clock=resque_clock)
    previous = tasks.swap_default_client(client)
    try:
        yield client
    finally:
        tasks.swap_default_client(previous)
        client.flush()
        client.redis.close()


@pytest.fixture
def resque_fake(resque_clock: Clock) -> Iterator[FakeResque]:
    from resque.testing.fake import FakeResque

    fake = FakeResque(clock=resque_clock)
    previous = tasks.swap_default_client(fake)
    try:
        yield fake
    finally:
        tasks.swap_default_client(previous)

