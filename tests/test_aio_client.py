"""resque.aio.AsyncResque, the asyncio client (async def jobs awaited on a worker's loop are
test_aio.py's): the same enqueue from the asyncio client and the sync one writes the same
bytes (ids aside), and an awaited result comes from a real worker."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio
import taskapp
from support.workerkit import Workers, wait_for

import resque
from resque import JobStatus, Resque, layout
from resque.aio import AsyncJob, AsyncResque, async_redis
from resque.handles import JobFailed, NotTracked
from resque.jobs import Registry

T = TypeVar("T")
ID = layout.JOB_ID


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def items(r: redis.Redis, key: str) -> list[bytes]:
    return [raw if isinstance(raw, bytes) else raw.encode() for raw in r.lrange(key, 0, -1)]


def without_ids(raw: bytes) -> bytes:
    """A payload with its id taken out (the one thing two enqueues never share)."""
    job = json.loads(raw)
    assert isinstance(job.pop(ID), str)
    return json.dumps(job, separators=(",", ":"), ensure_ascii=False).encode()


async def both(redis_url: str, call: str, *args: Any, **options: Any) -> None:
    """The same call through the sync client, then the asyncio one."""
    getattr(Resque(redis_url, **options), call)(*args)
    client = AsyncResque(redis_url, **options)
    try:
        await getattr(client, call)(*args)
    finally:
        await client.aclose()


# --- the same bytes ---------------------------------------------------------------------------


CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("enqueue", (taskapp.echo, "t", 1, 2), {}),
    ("enqueue_to", ("urgent", taskapp.echo, "t", 1.0e20, -0.0), {}),
    ("enqueue_call", (taskapp.echo, ["t", 3], {"locale": "sv", "x": 0.1}), {}),
]


@pytest.mark.parametrize("call, args, kwargs", CALLS)
def test_an_enqueue_writes_rubys_bytes_from_both_clients_without_ids(
    r: redis.Redis, redis_url: str, call: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    run(both(redis_url, call, *args, job_ids=False))
    queue = "urgent" if call == "enqueue_to" else "tasks"
    sync, async_ = items(r, f"resque:queue:{queue}")
    assert sync == async_


def test_a_class_name_goes_to_the_queue_given_with_the_same_bytes(
    r: redis.Redis, redis_url: str
) -> None:
    run(both(redis_url, "enqueue_to", "mail", "Mailer::Welcome", "ünïcode ✓",
             {"nested": [1.5, None, True]}))
    first, second = items(r, "resque:queue:mail")
    assert first != second  # each has its own id
    assert without_ids(first) == without_ids(second)
    assert first.startswith(b'{"class":"Mailer::Welcome","args":["\xc3\xbcn')


def test_a_tracked_enqueue_writes_the_same_payload_and_record(r: redis.Redis,
                                                               redis_url: str) -> None:
    sync_job = Resque(redis_url).enqueue_call(taskapp.echo, ["t"], {}, status=True)

    async def tracked() -> AsyncJob[Any] | None:
        client = AsyncResque(redis_url)
        try:
            return await client.enqueue_call(taskapp.echo, ["t"], {}, status=True)
        finally:
            await client.aclose()

    async_job = run(tracked())
    assert sync_job is not None and async_job is not None
    first, second = items(r, "resque:queue:tasks")
    assert without_ids(first) == without_ids(second) == (
        b'{"class":"taskapp.echo","args":["t"],"track":86400}')
    records = [json.loads(r.get(f"resque:status:{job.id}") or b"{}")
               for job in (sync_job, async_job)]
    volatile = ("time", "enqueued_at", "payload", "uuid")
    assert [{k: v for k, v in rec.items() if k not in volatile} for rec in records] == [
        {"status": "queued", "name": "taskapp.echo", "queue": "tasks"}] * 2
    assert [rec["uuid"] for rec in records] == [sync_job.id, async_job.id]
    assert [without_ids(rec["payload"].encode()) for rec in records] == [without_ids(first)] * 2
    assert r.zcard("resque:_statuses") == 2
    assert r.ttl(f"resque:status:{async_job.id}") == r.ttl(f"resque:status:{sync_job.id}")


def test_a_delayed_enqueue_writes_the_same_item(r: redis.Redis, redis_url: str) -> None:
    when = int(time.time()) + 3600
    run(both(redis_url, "enqueue_at", when, taskapp.echo, "later", job_ids=False))
    assert r.zrange("resque:delayed_queue_schedule", 0, -1) == [str(when).encode()]
    sync, async_ = items(r, f"resque:delayed:{when}")
    assert sync == async_ == b'{"class":"taskapp.echo","args":["later"],"queue":"tasks"}'
    assert r.smembers(f"resque:timestamps:{sync.decode()}") == {f"delayed:{when}".encode()}


def test_enqueue_in_a_moment_already_past_is_queued_now(r: redis.Redis, redis_url: str) -> None:
    async def main() -> None:
        client = AsyncResque(redis_url)
        await client.enqueue_in(datetime.timedelta(seconds=-5), taskapp.echo, "now")
        assert await client.size("tasks") == 1
        await client.aclose()

    run(main())
    assert r.zcard("resque:delayed_queue_schedule") == 0


# --- reading ----------------------------------------------------------------------------------


def test_queue_sizes(r: redis.Redis, redis_url: str) -> None:
    async def main() -> tuple[list[str], dict[str, int], int]:
        client = AsyncResque(redis_url)
        await client.enqueue(taskapp.echo, "a")
        await client.enqueue(taskapp.echo, "b")
        await client.enqueue_to("mail", "Mailer", 1)
        found = (await client.queues(), await client.queue_sizes(), await client.size("mail"))
        await client.aclose()
        return found

    assert run(main()) == (["mail", "tasks"], {"mail": 1, "tasks": 2}, 1)


def test_a_result_is_awaited_from_a_real_worker(r: redis.Redis, redis_url: str,
                                                workers: Workers) -> None:
    async def main() -> Any:
        client = AsyncResque(redis_url)
        job = await client.enqueue_call(taskapp.echo, ["t", 1], {"locale": "sv"}, status=True)
        assert job is not None and job.id is not None
        assert await job.status() is JobStatus.QUEUED
        worker = workers.start("tasks", "--app", "taskapp", "--burst",
                               env={"TASKAPP_REDIS": redis_url})
        value = await job.result(timeout=30)
        await asyncio.to_thread(worker.wait, 30)
        fetched = await client.fetch(job.id)
        assert fetched is not None and await fetched.status() is JobStatus.FINISHED
        await client.aclose()
        return value

    assert run(main()) == {"tag": "t", "numbers": [1], "locale": "sv", "extra": {}}


def test_a_failed_job_raises_job_failed(r: redis.Redis, redis_url: str,
                                        workers: Workers) -> None:
    async def main() -> None:
        client = AsyncResque(redis_url)
        job = await client.enqueue_call(taskapp.boom, ["kaboom"], {}, status=True)
        assert job is not None
        workers.start("tasks", "--app", "taskapp", "--burst", env={"TASKAPP_REDIS": redis_url})
        with pytest.raises(JobFailed, match="kaboom"):
            await job.result(timeout=30)
        await client.aclose()

    run(main())


def test_result_times_out_while_the_job_waits(r: redis.Redis, redis_url: str) -> None:
    async def main() -> None:
        client = AsyncResque(redis_url)
        job = await client.enqueue_call(taskapp.echo, ["t"], {}, status=True)
        assert job is not None
        with pytest.raises(TimeoutError):
            await job.result(timeout=0.2)
        await client.aclose()

    run(main())


def test_an_untracked_job_has_no_status(r: redis.Redis, redis_url: str) -> None:
    async def main() -> None:
        client = AsyncResque(redis_url)
        job = await client.enqueue(taskapp.echo, "t")
        assert job is not None
        with pytest.raises(NotTracked):
            await job.status()
        await client.aclose()

    run(main())


def test_before_enqueue_saying_no_writes_nothing(r: redis.Redis, redis_url: str) -> None:
    refused: list[tuple[Any, ...]] = []

    def no(*args: Any) -> bool:
        refused.append(args)
        return False

    taskapp.echo.hooks.setdefault("before_enqueue", []).append(no)
    try:
        async def main() -> AsyncJob[Any] | None:
            client = AsyncResque(redis_url)
            job = await client.enqueue(taskapp.echo, "t")
            await client.aclose()
            return job

        assert run(main()) is None
    finally:
        taskapp.echo.hooks["before_enqueue"].remove(no)
    assert (refused, r.keys("resque:*")) == ([("t",)], [])


# --- connections ------------------------------------------------------------------------------


def test_the_namespace_comes_from_the_url(r: redis.Redis, redis_url: str) -> None:
    async def main() -> None:
        client = AsyncResque(f"{redis_url}?namespace=shop")
        await client.enqueue(taskapp.echo, "t")
        await client.aclose()

    run(main())
    assert r.llen("shop:queue:tasks") == 1


def test_a_redis_asyncio_client_is_used_as_given(redis_url: str) -> None:
    given = redis.asyncio.Redis.from_url(redis_url)
    assert async_redis(given, None) == (given, "resque")


def test_sentinel_needs_a_client_built_for_it() -> None:
    with pytest.raises(ValueError, match="Sentinel"):
        async_redis("redis+sentinel://localhost:26379/mymaster", None)




def test_aclose_closes_the_connections_it_built_and_leaves_a_given_client_open(
    r: redis.Redis, redis_url: str
) -> None:
    """What ``AsyncResque(url)`` opened is closed by ``aclose`` (no connection left for the
    collector to warn about); a ``redis.asyncio.Redis`` passed in stays its owner's."""

    def connected() -> set[int]:
        return {int(client["id"]) for client in r.client_list()}

    async def main() -> tuple[int, int, bool]:
        built = AsyncResque(redis_url)
        await built.enqueue(taskapp.echo, "t")
        built_id = await built.redis.client_id()  # the pool's one connection, reused
        await built.aclose()
        given = redis.asyncio.Redis.from_url(redis_url)
        client = AsyncResque(given)
        await client.enqueue(taskapp.echo, "t")
        given_id = await given.client_id()
        await client.aclose()
        still_open = await given.ping() and given_id in connected()
        await given.aclose()
        return built_id, given_id, bool(still_open)

    built_id, given_id, still_open = run(main())
    assert still_open
    # The server drops a closed connection from its list as it reads the close: poll.
    wait_for(lambda: built_id not in connected() and given_id not in connected(),
             timeout=5, what="the closed connections to leave CLIENT LIST")


def test_a_unique_job_is_refused_with_a_clear_error_and_nothing_is_queued(
    r: redis.Redis, redis_url: str
) -> None:
    """Its lock is taken with the push by the sync client's script, which this one lacks."""
    registry = Registry()
    unique_echo = resque.job(name="UniqueEcho", queue="tasks", registry=registry,
                             unique=resque.Unique())(taskapp.echo.func)

    async def enqueue() -> None:
        client = AsyncResque(redis_url, registry=registry)
        try:
            await client.enqueue(unique_echo, "t")
        finally:
            await client.aclose()

    with pytest.raises(TypeError, match="UniqueEcho is a unique job"):
        run(enqueue())
    assert r.llen("resque:queue:tasks") == 0
