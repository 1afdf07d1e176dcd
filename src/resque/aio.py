"""``AsyncResque``: the client for asyncio code (FastAPI, Starlette, aiohttp), on redis-py's
asyncio client.

The same API as ``resque.Resque`` for what a web app does (``enqueue``, ``enqueue_to``,
``enqueue_call``, ``enqueue_at``, ``enqueue_in``, queue sizes, a job's status and result),
every method a coroutine. A call is encoded by the same code as the sync client's
(``client.prepare``), so both write the same bytes for the same call, ids aside; the same Lua
scripts push it, record its status and delay it. Hooks (``before_enqueue``...) run as with the
sync client: they are plain functions, called in the event loop's thread.

    resque = AsyncResque("redis://localhost:6379/0")
    job = await resque.enqueue(send_welcome, 42)          # an AsyncJob
    job = await resque.enqueue_call(add, [1, 2], {}, status=True)
    total = await job.result(timeout=5)                   # waits on pub/sub
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from resque import jobs, layout, performing, scripts, tracing
from resque.client import PUSH_SCRIPT, Performs, Prepared, prepare
from resque.connection import DEFAULT_NAMESPACE, connect
from resque.handles import NotTracked, result_of
from resque.settings import ClientSettings
from resque.status import (
    STATUS_SCRIPT,
    JobStatus,
    StatusRecord,
    check_ttl,
    pending_ttl,
    queued_fields,
    write_argv,
)
from resque.tasks import Delay, TaskBase, When, seconds

__all__ = ["AsyncJob", "AsyncResque", "async_redis"]

P = ParamSpec("P")
R = TypeVar("R")

DELAY_SCRIPT = scripts.source("delayed_add")  # resque-scheduler's layout (scheduler/delayed)

# Connection settings that mean the same to redis-py's sync and asyncio connections.
PORTABLE = ("host", "port", "db", "username", "password", "path", "socket_timeout",
            "socket_connect_timeout", "socket_keepalive", "client_name")


def async_redis(spec: redis.asyncio.Redis | str | None,
                namespace: str | None) -> tuple[redis.asyncio.Redis, str]:
    """``(client, namespace)`` for every form ``resque.Resque`` takes (a URL, Resque's
    ``host:port/ns``, TLS, a Unix socket, the environment) but Sentinel, whose asyncio client
    you build yourself (``redis.asyncio.sentinel``) and pass in. Never retries by itself."""
    if isinstance(spec, redis.asyncio.Redis):
        return spec, DEFAULT_NAMESPACE if namespace is None else namespace
    sync, namespace = connect(spec, namespace)
    pool = sync.connection_pool
    kind = pool.connection_class
    if kind is redis.connection.UnixDomainSocketConnection:
        connection_class: type[Any] = redis.asyncio.UnixDomainSocketConnection
    elif kind is redis.connection.SSLConnection:
        connection_class = redis.asyncio.SSLConnection
    elif kind is redis.connection.Connection:
        connection_class = redis.asyncio.Connection
    else:
        raise ValueError(f"AsyncResque cannot build an asyncio client for {kind.__name__} "
                         "connections (Sentinel): pass a redis.asyncio client instead")
    kwargs = {name: value for name, value in pool.connection_kwargs.items()
              if name in PORTABLE or name.startswith("ssl_")}
    async_pool = redis.asyncio.ConnectionPool(connection_class=connection_class,
                                              retry=Retry(NoBackoff(), 0), **kwargs)
    # from_pool: the client owns the pool it was built with, so its aclose disconnects it.
    return redis.asyncio.Redis.from_pool(async_pool), namespace


class AsyncJob(Generic[R]):
    """The handle an ``AsyncResque`` enqueue returns: ``resque.Job``'s, awaitable."""

    __slots__ = ("client", "id", "queue", "class_name", "payload", "tracked", "due")

    def __init__(self, client: AsyncResque, prepared: Prepared, due: int | None = None) -> None:
        self.client = client
        self.id = prepared.job_id
        self.queue = prepared.queue
        self.class_name = prepared.name
        self.payload = prepared.payload  # the exact bytes queued
        self.tracked = prepared.track is not None
        self.due = due

    @classmethod
    async def fetch(cls, job_id: str, client: AsyncResque) -> AsyncJob[Any] | None:
        """The handle of a tracked job, from any process; None if there is no record."""
        record = await client.status_record(job_id)
        if record is None:
            return None
        prepared = Prepared(record.queue or "", record.name or "", None, (), {},
                            record.payload or "", job_id, 1)
        return cls(client, prepared, record.due)

    async def info(self) -> StatusRecord | None:
        """The job's status record; None if it expired. One round trip."""
        return await self.client.status_record(self._tracked_id())

    async def status(self) -> JobStatus | None:
        record = await self.info()
        return record.status if record else None

    async def result(self, timeout: float | None = None) -> R:
        """The job's return value, waiting up to ``timeout`` seconds (None: for ever) on
        pub/sub, never polling; raises as ``resque.Job.result`` does."""
        job_id = self._tracked_id()
        record = await self.client.wait(job_id, timeout)
        value: R = result_of(record, job_id, self.class_name, timeout)
        return value

    def _tracked_id(self) -> str:
        if not self.tracked or self.id is None:
            raise NotTracked(f"job {self.id or self.class_name} was enqueued without a status: "
                             "enqueue it with status=True to follow it")
        return self.id

    def __repr__(self) -> str:
        return f"<AsyncJob {self.id} {self.class_name} queue={self.queue!r}>"


class AsyncResque:
    """A connection to one Resque farm for asyncio code; see the module's docstring.

    ``redis``: a ``redis.asyncio.Redis`` client, or any form ``resque.Resque`` takes.
    ``job_ids``, ``result_ttl``, ``registry``: as ``resque.Resque``'s.
    """

    def __init__(self, redis: redis.asyncio.Redis | str | None = None, *,
                 namespace: str | None = None, registry: jobs.Registry | None = None,
                 job_ids: bool | None = None, result_ttl: int | None = None) -> None:
        self.redis, namespace = async_redis(redis, namespace)
        self._built = self.redis is not redis  # closed by aclose; one passed in is the caller's
        self.keys = layout.Keys(namespace)
        self.registry = registry or jobs.registry
        settings = ClientSettings.from_env(job_ids=job_ids, result_ttl=result_ttl)
        self.job_ids = settings.job_ids
        self.result_ttl = check_ttl(settings.result_ttl)
        self._push = self.redis.register_script(PUSH_SCRIPT)
        self._status = self.redis.register_script(STATUS_SCRIPT)
        self._delay = self.redis.register_script(DELAY_SCRIPT)

    @property
    def namespace(self) -> str:
        return self.keys.namespace

    async def aclose(self) -> None:
        """Close the connections, when this client built them (a ``redis.asyncio.Redis``
        passed in is left open: its owner closes it)."""
        if self._built:
            await self.redis.aclose()

    def __repr__(self) -> str:
        return f"<AsyncResque namespace={self.namespace!r}>"

    # --- enqueueing ---------------------------------------------------------------------

    @overload
    async def enqueue(self, job: TaskBase[P, R], /, *args: P.args,
                      **kwargs: P.kwargs) -> AsyncJob[R] | None: ...
    @overload
    async def enqueue(self, job: type[Performs[P, R]], /, *args: P.args,
                      **kwargs: P.kwargs) -> AsyncJob[R] | None: ...
    @overload
    async def enqueue(self, job: str, /, *args: Any, **kwargs: Any) -> AsyncJob[Any] | None: ...
    async def enqueue(self, job: Any, /, *args: Any, **kwargs: Any) -> AsyncJob[Any] | None:
        """Enqueue ``job(*args, **kwargs)`` to its own queue: one round trip."""
        return await self.enqueue_call(job, args, kwargs)

    async def enqueue_to(self, queue: str, job: Any, /, *args: Any,
                         **kwargs: Any) -> AsyncJob[Any] | None:
        """Enqueue to a named queue."""
        return await self.enqueue_call(job, args, kwargs, queue=queue)

    async def enqueue_at(self, when: When, job: Any, /, *args: Any,
                         **kwargs: Any) -> AsyncJob[Any] | None:
        """Enqueue at ``when`` (a datetime, or epoch seconds): a scheduler moves it."""
        return await self.enqueue_call(job, args, kwargs, at=when)

    async def enqueue_in(self, delay: Delay, job: Any, /, *args: Any,
                         **kwargs: Any) -> AsyncJob[Any] | None:
        """Enqueue ``delay`` (seconds or a timedelta) from now."""
        return await self.enqueue_call(job, args, kwargs, delay=delay)

    async def enqueue_call(self, job: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *,
                           queue: str | None = None, status: bool | None = None,
                           result_ttl: int | None = None, at: When | None = None,
                           delay: Delay | None = None,
                           policies: Mapping[str, Any] | None = None) -> AsyncJob[Any] | None:
        """``enqueue`` with its options spelled out, as ``resque.Resque.enqueue_call``.
        A unique job is refused: its lock is taken with the push by the sync client's
        script, which this client does not run yet."""
        prepared = prepare(self.registry, job, args, kwargs, queue, self.job_ids, status,
                           result_ttl or None, self.result_ttl, None, policies)
        if prepared.unique is not None:
            raise TypeError(f"{prepared.name} is a unique job (resque.Unique): enqueue it "
                            "with resque.Resque; the asyncio client does not take its lock")
        if delay is not None:
            at = time.time() + seconds(delay)
        if at is not None:
            timestamp = _timestamp(at)
            if tracing.tracer is not None:
                with tracing.tracer.sending(prepared, self):
                    return await self._delay_prepared(prepared, timestamp)
            return await self._delay_prepared(prepared, timestamp)
        return await self.submit(prepared)

    async def submit(self, prepared: Prepared) -> AsyncJob[Any] | None:
        """Queue a prepared call, with its enqueue hooks around it. One round trip: the
        status record (a tracked job) and the push script, pipelined."""
        if tracing.tracer is not None:
            with tracing.tracer.sending(prepared, self):
                return await self._submit(prepared)
        return await self._submit(prepared)

    async def _submit(self, prepared: Prepared) -> AsyncJob[Any] | None:
        if not _before(prepared, "before_enqueue"):
            return None
        async with self.redis.pipeline(transaction=False) as pipe:
            if prepared.track is not None:
                await self._record_queued(prepared, pipe)
            await self._push(keys=self._push_keys(prepared.queue),
                             args=[prepared.queue, prepared.payload], client=pipe)
            await pipe.execute()
        _after(prepared, "after_enqueue")
        return AsyncJob(self, prepared)

    async def _delay_prepared(self, prepared: Prepared, timestamp: int) -> AsyncJob[Any] | None:
        """resque-scheduler's layout, as ``Delayed.enqueue_prepared`` writes it."""
        if not _before(prepared, "before_schedule"):
            return None
        if timestamp <= int(time.time()):
            handle = await self._submit(prepared)
        else:
            item = layout.delayed_item_of(prepared.payload, prepared.queue)
            async with self.redis.pipeline(transaction=False) as pipe:
                if prepared.track is not None:
                    await self._record_queued(prepared, pipe, due=timestamp)
                await self._delay(
                    keys=[self.keys.delayed(timestamp), self.keys.timestamps(item),
                          self.keys.delayed_schedule],
                    args=[item, layout.delayed_member(timestamp), timestamp], client=pipe)
                await pipe.execute()
            handle = AsyncJob(self, prepared, due=timestamp)
        _after(prepared, "after_schedule")
        return handle

    async def _record_queued(self, prepared: Prepared, pipe: Any,
                             due: int | None = None) -> None:
        """The status record says queued before the push can reach a worker (same pipe)."""
        assert prepared.job_id is not None and prepared.track is not None
        fields = layout.status_fields(**queued_fields(prepared.name, prepared.queue,
                                                      prepared.payload, due))
        argv = write_argv(self.keys, prepared.job_id, pending_ttl(prepared.track), fields)
        await self._status(keys=[self.keys.status(prepared.job_id), self.keys.statuses],
                           args=argv, client=pipe)

    def _push_keys(self, queue: str) -> list[str]:
        return [self.keys.queues, self.keys.queue(queue), self.keys.wake_channel(queue)]

    # --- reading ------------------------------------------------------------------------

    async def size(self, queue: str) -> int:
        return int(await self.redis.llen(self.keys.queue(queue)))

    async def queues(self) -> list[str]:
        """Every queue name in the ``queues`` set, sorted."""
        return sorted(layout.text(q) for q in await self.redis.smembers(self.keys.queues))

    async def queue_sizes(self) -> dict[str, int]:
        names = await self.queues()
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(self.keys.queue(name))
            sizes = await pipe.execute()
        return dict(zip(names, (int(s) for s in sizes), strict=True))

    async def status_record(self, job_id: str) -> StatusRecord | None:
        """A tracked job's record, or None (never tracked, or expired). One round trip."""
        record = layout.decode_status(await self.redis.get(self.keys.status(job_id)))
        return None if record is None else StatusRecord.from_json(job_id, record)

    async def fetch(self, job_id: str) -> AsyncJob[Any] | None:
        """``AsyncJob.fetch(job_id, self)``."""
        return await AsyncJob.fetch(job_id, self)

    async def wait(self, job_id: str, timeout: float | None) -> StatusRecord | None:
        """The record once the job has ended, or the last one seen at ``timeout``;
        subscribed before the first read, so an end in between is not missed."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            await pubsub.subscribe(self.keys.status_channel(job_id))
            while True:
                record = await self.status_record(job_id)
                if record is None or (record.status is not None and record.status.ended):
                    return record
                if not await _next_message(pubsub, deadline):
                    return record
        finally:
            await pubsub.aclose()


async def _next_message(pubsub: Any, deadline: float | None) -> bool:
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        wait = 60.0 if left is None else min(left, 60.0)
        try:
            message = await pubsub.get_message(timeout=wait)
        except asyncio.TimeoutError:
            message = None
        if message is not None:
            return True


def _timestamp(when: When) -> int:
    from resque.scheduler.delayed import to_timestamp

    return to_timestamp(when)


def _before(prepared: Prepared, kind: str) -> bool:
    if prepared.target is None:
        return True
    return all(hook(*prepared.args, **prepared.kwargs) is not False
               for hook in performing.hooks(prepared.target, kind))


def _after(prepared: Prepared, kind: str) -> None:
    if prepared.target is not None:
        for hook in performing.hooks(prepared.target, kind):
            hook(*prepared.args, **prepared.kwargs)
