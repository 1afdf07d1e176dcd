"""The core client: enqueue, push, pop, peek, size, queues, dequeue, workers, info.

Every Redis command the client sends is here or in ``layout.Keys``'s names; enqueueing is one
round trip (``lua/push.lua``: Ruby's ``SADD queues`` + ``RPUSH queue:<q>`` and a wake-up
``PUBLISH`` for idle workers). It imports neither the worker nor the scheduler, which both
build on it; ``resque.Resque`` (``facade.py``) adds delayed and recurring jobs and ``worker()``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar, overload

import redis

from resque import arguments, current, ids, jobs, layout, performing, scripts, tracing
from resque.connection import connect, describe, translate_errors
from resque.handles import Job
from resque.layout import check_queue_name
from resque.policies import unique as unique_jobs
from resque.settings import ClientSettings
from resque.status import StatusStore, check_ttl
from resque.tasks import TaskBase

log = logging.getLogger("resque.client")

PUSH_SCRIPT = scripts.compose("push_lib", "push")  # see resque/lua/push_lib.lua

BULK_CHUNK = 2000  # payloads per RPUSH in enqueue_many: big enough to amortise, small for Lua

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Performs(Protocol[P, R_co]):
    """A job class, Ruby style: ``perform`` (a static or class method) takes the job's
    arguments. ``client.enqueue(SendWelcome, 42)`` is checked against it."""

    def perform(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a microsecond more
class Prepared:
    """A call made ready to queue: its payload encoded, its hooks' target found."""

    queue: str
    name: str
    target: Any  # the registered job (hooks), or the name when nothing is registered
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    payload: str
    job_id: str | None
    track: int | None  # seconds to keep status and result; None: untracked
    unique: tuple[unique_jobs.Unique, str] | None = None  # the policy and its lock's name


def prepare(registry: jobs.Registry, job: Any, args: Sequence[Any], kwargs: Mapping[str, Any],
            queue: str | None, job_ids: bool, status: bool | None, result_ttl: int | None,
            default_ttl: int, unique: unique_jobs.Unique | None = None,
            policies: Mapping[str, Any] | None = None) -> Prepared:
    """A call encoded as a payload, raising before anything is written: a job a worker could
    not find by name, arguments JSON cannot carry (naming which), a bad queue name. A unique
    call (``unique``, else the job's declaration) gets an id and its lock's spec."""
    name = jobs.class_name(job)
    queue = check_queue_name(queue or jobs.queue_of(job, registry))
    target = registry.get(job) if isinstance(job, str) else job
    track = None
    if status or (status is None and target is not None):
        asked, ttl = jobs.tracking(target) if target is not None else (False, None)
        if status or asked:
            track = check_ttl(result_ttl or ttl or default_ttl)
    unique = unique or unique_jobs.declared(target)
    job_id = ids.new_id() if job_ids or track is not None or unique else None
    try:
        packed = arguments.pack(args, kwargs)
        payload = layout.encode_job(name, packed, job_id, track)
    except (TypeError, ValueError) as exc:
        func = performing.signature_target(target)
        raise arguments.unencodable(name, func, args, kwargs, exc) from None
    if policies:  # policies: this call's retry and timeout, after id and track
        payload = layout.with_policies(payload, dict(policies))
    if unique is None:
        return Prepared(queue, name, target, tuple(args), kwargs, payload, job_id, track)
    lock = unique.lock_name(name, packed, args, kwargs)
    payload = layout.with_unique(payload, unique.spec(lock))
    return Prepared(queue, name, target, tuple(args), kwargs, payload, job_id, track,
                    (unique, lock))


class Client:
    """A connection to one Resque farm: a Redis plus a namespace.

    ``redis`` takes a client, a URL, Resque's ``host:port[:db][/namespace]`` or nothing (the
    ``RESQUE_REDIS``/``REDIS_URL`` environment variables, then ``localhost:6379``).
    ``allowed_modules`` lists module prefixes whose dotted job paths workers may import
    (added to ``RESQUE_JOB_MODULES``). ``inline=True`` performs jobs at enqueue time, with
    their hooks, like Ruby's ``Resque.inline``, for tests. ``job_ids=False`` (or
    ``RESQUE_JOB_IDS=0``) writes Ruby's exact payloads, without our ``id``, for apps whose
    Ruby code removes jobs with ``Resque.dequeue``; ``result_ttl`` (``RESQUE_RESULT_TTL``):
    seconds a tracked job's status and result are kept after it ends.
    """

    def __init__(
        self,
        redis: redis.Redis | str | None = None,
        *,
        namespace: str | None = None,
        registry: jobs.Registry | None = None,
        allowed_modules: Iterable[str] = (),
        inline: bool = False,
        job_ids: bool | None = None,
        result_ttl: int | None = None,
    ) -> None:
        self.redis, namespace = connect(redis, namespace)
        self.keys = layout.Keys(namespace)
        self.registry = registry or jobs.registry
        settings = ClientSettings.from_env(job_ids=job_ids, result_ttl=result_ttl)
        self.allowed_modules = [*settings.job_modules, *allowed_modules]
        self.job_ids = settings.job_ids
        self.result_ttl = check_ttl(settings.result_ttl)
        self.inline = inline
        self._push = self.redis.register_script(PUSH_SCRIPT)
        self._queue_keys: dict[str, list[str]] = {}

    @property
    def namespace(self) -> str:
        return self.keys.namespace

    @functools.cached_property
    def statuses(self) -> StatusStore:
        """Status records of tracked jobs (``status=True``) under this namespace."""
        return StatusStore(self.redis, self.keys)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {describe(self.redis)} namespace={self.namespace!r}>"

    # --- enqueueing ---------------------------------------------------------------------

    @overload
    def enqueue(self, job: TaskBase[P, R], /, *args: P.args,
                **kwargs: P.kwargs) -> Job[R] | None: ...
    @overload
    def enqueue(self, job: type[Performs[P, R]], /, *args: P.args,
                **kwargs: P.kwargs) -> Job[R] | None: ...
    @overload
    def enqueue(self, job: str, /, *args: Any, **kwargs: Any) -> Job[Any] | None: ...
    @translate_errors
    def enqueue(self, job: Any, /, *args: Any, **kwargs: Any) -> Job[Any] | None:
        """Enqueue ``job(*args, **kwargs)`` to the job's own queue; a handle (``Job``), or
        None if a ``before_enqueue`` hook returned False."""
        return self.submit(prepare(self.registry, job, args, kwargs, None, self.job_ids, None,
                                   None, self.result_ttl))

    @overload
    def enqueue_to(self, queue: str, job: TaskBase[P, R], /, *args: P.args,
                   **kwargs: P.kwargs) -> Job[R] | None: ...
    @overload
    def enqueue_to(self, queue: str, job: type[Performs[P, R]], /, *args: P.args,
                   **kwargs: P.kwargs) -> Job[R] | None: ...
    @overload
    def enqueue_to(self, queue: str, job: str, /, *args: Any,
                   **kwargs: Any) -> Job[Any] | None: ...
    @translate_errors
    def enqueue_to(self, queue: str, job: Any, /, *args: Any, **kwargs: Any) -> Job[Any] | None:
        """Enqueue to a named queue, running ``before_enqueue``/``after_enqueue`` hooks.
        One round trip (``lua/push.lua``), in about 6 µs of Python besides redis-py's."""
        return self.submit(prepare(self.registry, job, args, kwargs, queue, self.job_ids, None,
                                   None, self.result_ttl))

    @translate_errors
    def enqueue_call(self, job: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *,
                     queue: str | None = None, status: bool | None = None,
                     result_ttl: int | None = None,
                     unique: unique_jobs.Unique | None = None,
                     policies: Mapping[str, Any] | None = None) -> Job[Any] | None:
        """``enqueue`` with its options spelled out: what tasks' ``enqueue`` calls.

        One round trip (the push script); two commands in it for a tracked job (its status
        record, then the push, pipelined)."""
        return self.submit(self.prepare(job, args, kwargs, queue=queue, status=status,
                                        result_ttl=result_ttl, unique=unique,
                                        policies=policies))

    def prepare(self, job: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *,
                queue: str | None = None, status: bool | None = None,
                result_ttl: int | None = None,
                unique: unique_jobs.Unique | None = None,
                policies: Mapping[str, Any] | None = None) -> Prepared:
        """Encode a call, raising before anything is written (``prepare``)."""
        return prepare(self.registry, job, args, kwargs, queue, self.job_ids, status,
                       result_ttl or None, self.result_ttl, unique, policies)

    def submit(self, prepared: Prepared, *, hooks: bool = True) -> Job[Any] | None:
        """Queue a prepared call (enqueue hooks around it); its handle, or None if a
        ``before_enqueue`` hook returned False."""
        if tracing.tracer is not None:
            with tracing.tracer.sending(prepared, self):
                return self._submit(prepared, hooks)
        return self._submit(prepared, hooks)

    def _submit(self, prepared: Prepared, hooks: bool) -> Job[Any] | None:
        target, args, kwargs = prepared.target, prepared.args, prepared.kwargs
        hooks = hooks and target is not None  # a name nothing is registered under has none
        if hooks:
            for hook in performing.hooks(target, "before_enqueue"):
                if hook(*args, **kwargs) is False:
                    return None
        if self.inline:
            self._perform_inline(prepared.payload, prepared.queue)
        elif prepared.unique is not None:  # one round trip: the lock, the status, the push
            held = unique_jobs.push(self, prepared)
            if held is not None:
                return self._duplicate(prepared, held)
        elif prepared.track is not None:
            self._push_tracked(prepared)
        else:
            self._push_payloads(prepared.queue, prepared.payload)
        if hooks:
            for hook in performing.hooks(target, "after_enqueue"):
                hook(*args, **kwargs)
        return Job(self, prepared.job_id, prepared.queue, prepared.name, prepared.payload,
                   prepared.track is not None)

    def _duplicate(self, prepared: Prepared, held: str) -> Job[Any] | None:
        """The handle of the job whose lock refused ``prepared`` (marked ``duplicate``);
        None when the lock's value names no job of ours (resque-loner's ``"1"``)."""
        holder = unique_jobs.holder_of(held)
        log.info("%s not queued: a duplicate of job %s, which holds its unique lock",
                 prepared.name, holder[0] if holder else f"(lock value {held[:40]!r})")
        if holder is None:
            return None
        handle: Job[Any] = Job(self, holder[0], prepared.queue, prepared.name, held, holder[1])
        handle.duplicate = True
        return handle

    def _push_tracked(self, prepared: Prepared) -> None:
        """The status record, then the push, in one pipelined round trip: a worker cannot
        start the job before its record says queued."""
        assert prepared.job_id is not None and prepared.track is not None
        with self.redis.pipeline(transaction=False) as pipe:
            self.statuses.queued(prepared.job_id, prepared.track, name=prepared.name,
                                 queue=prepared.queue, payload=prepared.payload, client=pipe)
            self._push(keys=self._push_keys(prepared.queue),
                       args=[prepared.queue, prepared.payload], client=pipe)
            pipe.execute()

    def _push_keys(self, queue: str) -> list[str]:
        keys = self._queue_keys.get(queue)
        if keys is None:
            keys = [self.keys.queues, self.keys.queue(queue), self.keys.wake_channel(queue)]
            if len(self._queue_keys) < 10_000:
                self._queue_keys[queue] = keys
        return keys

    def _push_payloads(self, queue: str, *payloads: str) -> None:
        """One ``EVALSHA`` of the push script (loading it once if the server lost it).

        Called directly rather than through redis-py's ``Script`` wrapper: on this hot path
        the wrapper costs as much client CPU as the round trip itself.
        """
        command = ("EVALSHA", self._push.sha, 3, *self._push_keys(queue), queue, *payloads)
        try:
            self.redis.execute_command(*command)
        except redis.exceptions.NoScriptError:
            self._push(keys=self._push_keys(queue), args=[queue, *payloads])

    @translate_errors
    def push(self, queue: str, item: dict[str, Any]) -> None:
        """Push a raw ``{"class": ..., "args": [...]}`` item, without hooks (Ruby's push)."""
        check_queue_name(queue)
        if not isinstance(item, dict) or "class" not in item:
            raise ValueError(f"push takes a dict with 'class' and 'args', not {item!r}")
        extra = {k: v for k, v in item.items() if k not in ("class", "args")}
        payload = layout.encode_job(jobs.class_name(item["class"]), item.get("args", []))
        if extra:  # keep extra keys after class and args, as Ruby re-encodes them
            payload = payload[:-1] + "," + layout.encode(extra)[1:]
        self._push_payloads(queue, payload)

    @translate_errors
    def enqueue_many(
        self, job: Any, args_list: Iterable[Sequence[Any]], queue: str | None = None
    ) -> int:
        """Enqueue one job per args sequence in pipelined bulk; returns how many were queued.

        Hooks do not run (as with ``push``): bulk loads are for data, not per-job logic.
        Everything is encoded before anything is sent, so bad args queue nothing. Each job
        gets an id (unless ``job_ids=False``); no handles are returned.
        """
        queue = check_queue_name(queue or jobs.queue_of(job, self.registry))
        name = jobs.class_name(job)
        new_id: Callable[[], str | None] = ids.new_id if self.job_ids else lambda: None
        try:
            payloads = [layout.encode_job(name, args, new_id()) for args in args_list]
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"enqueue_many of {name}: {exc}") from None
        keys = self._push_keys(queue)
        with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(payloads), BULK_CHUNK):
                chunk = payloads[start : start + BULK_CHUNK]
                self._push(keys=keys, args=[queue, *chunk], client=pipe)
            pipe.execute()
        return len(payloads)

    def _perform_inline(self, payload: str, queue: str) -> None:
        """Perform now exactly as a worker would: args through JSON, the class resolved by
        name, so a job a worker could not resolve fails here, in the user's tests."""
        data = layout.decode_job(payload, queue)
        target = self.registry.resolve(data["class"], self.allowed_modules)
        tracked = layout.JOB_TRACK in data
        try:
            current.execute(target, data, queue, "inline", self.statuses if tracked else None)
        except BaseException as exc:
            if tracked:
                self.statuses.failed(data[layout.JOB_ID], data[layout.JOB_TRACK],
                                     f"{type(exc).__name__}: {exc}")
            raise

    # --- reading and removing -----------------------------------------------------------

    @translate_errors
    def pop(self, queue: str) -> dict[str, Any] | None:
        """Take the first job off a queue. A bad item raises ``BadPayload`` and stays queued."""
        key = self.keys.queue(check_queue_name(queue))
        raw: Any = self.redis.lpop(key)
        if raw is None:
            return None
        try:
            return layout.decode_job(raw, queue)
        except ValueError:
            self.redis.lpush(key, raw)  # put it back where it was: never lose data
            raise

    @translate_errors
    def peek(self, queue: str, start: int = 0, count: int = 1) -> Any:
        """Jobs at ``start``; one job (or None) when ``count == 1``, else a list, as Ruby."""
        if count < 1 or start < 0:
            raise ValueError("peek needs start >= 0 and count >= 1")
        raws = self.redis.lrange(self.keys.queue(queue), start, start + count - 1)
        decoded = [layout.decode_job(raw, queue) for raw in raws]
        if count == 1:
            return decoded[0] if decoded else None
        return decoded

    @translate_errors
    def size(self, queue: str) -> int:
        return int(self.redis.llen(self.keys.queue(queue)))

    @translate_errors
    def queues(self) -> list[str]:
        """Every queue name in the ``queues`` set, sorted."""
        return sorted(layout.text(q) for q in self.redis.smembers(self.keys.queues))

    @translate_errors
    def queue_sizes(self) -> dict[str, int]:
        names = self.queues()
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(self.keys.queue(name))
            sizes = pipe.execute()
        return dict(zip(names, (int(s) for s in sizes), strict=True))

    @translate_errors
    def remove_queue(self, queue: str) -> int:
        """Forget a queue and delete its jobs; returns how many jobs were deleted.

        One round trip: ``LLEN`` + ``SREM queues`` + ``DEL queue:<q>`` in a ``MULTI``, so
        the count is exactly what was deleted, even while others push to the queue.
        """
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.llen(self.keys.queue(queue))
            pipe.srem(self.keys.queues, queue)
            pipe.delete(self.keys.queue(queue))
            size, _, _ = pipe.execute()
        return int(size)

    @translate_errors
    def dequeue(self, job: Any, /, *args: Any, queue: str | None = None,
                **kwargs: Any) -> int | None:
        """Remove queued jobs of a class (all of them, or those with exactly these args and
        keywords; a keyword named ``queue`` cannot be matched here).

        Items are compared decoded, so jobs that Perl wrote with another key order match, and
        so do jobs carrying our ``id`` (unlike Ruby's byte-exact ``Resque.dequeue``). Runs
        ``before_dequeue`` (False cancels, returning None) and ``after_dequeue`` hooks.
        """
        queue = queue or jobs.queue_of(job, self.registry)
        name = jobs.class_name(job)
        target = self.registry.get(job) if isinstance(job, str) else job
        for hook in performing.hooks(target, "before_dequeue"):
            if hook(*args, **kwargs) is False:
                return None
        # Compared as sorted-key JSON: Perl's key order is ignored, but 1, 1.0 and true stay
        # distinct, as with Ruby's byte-exact LREM.
        wanted = layout.canonical(arguments.pack(args, kwargs)) if args or kwargs else None
        key = self.keys.queue(queue)
        matches: set[Any] = set()
        for raw in self._scan_list(key):
            try:
                item = layout.decode_job(raw, queue)
            except ValueError:
                continue
            if item["class"] != name:
                continue
            if wanted is None or layout.canonical(item["args"]) == wanted:
                matches.add(raw)
        removed = 0
        for raw in matches:
            removed += int(self.redis.lrem(key, 0, raw))
        for hook in performing.hooks(target, "after_dequeue"):
            hook(*args, **kwargs)
        return removed

    def _scan_list(self, key: str, chunk: int = 1000) -> Iterable[Any]:
        start = 0
        while True:
            items: list[Any] = self.redis.lrange(key, start, start + chunk - 1)
            yield from items
            if len(items) < chunk:
                return
            start += chunk

    # --- workers and stats --------------------------------------------------------------

    @translate_errors
    def workers(self) -> list[str]:
        return sorted(layout.text(w) for w in self.redis.smembers(self.keys.workers))

    @translate_errors
    def working(self) -> dict[str, dict[str, Any]]:
        """Workers with a job, mapped to their decoded working-on record (Ruby's ``working``)."""
        ids = self.workers()
        if not ids:
            return {}
        # Keys as bytes: an id that is not UTF-8 (another tool's) goes back as it came.
        records = self.redis.mget(
            [self.keys.worker(w).encode("utf-8", "surrogateescape") for w in ids]
        )
        result: dict[str, dict[str, Any]] = {}
        for worker, raw in zip(ids, records, strict=True):
            if not raw:
                continue
            try:
                result[worker] = layout.decode(raw)
            except ValueError:
                result[worker] = {"unreadable": layout.raw_text(raw)}
        return result

    @translate_errors
    def stat(self, name: str) -> int:
        return int(self.redis.get(self.keys.stat(name)) or 0)

    @translate_errors
    def info(self) -> dict[str, Any]:
        """Ruby's ``Resque.info``: pending, processed, queues, workers, working, failed..."""
        sizes = self.queue_sizes()
        return {
            "pending": sum(sizes.values()),
            "processed": self.stat("processed"),
            "queues": len(sizes),
            "workers": int(self.redis.scard(self.keys.workers)),
            "working": len(self.working()),
            "failed": int(self.redis.llen(self.keys.failed)),
            "servers": [describe(self.redis)],
            "environment": ClientSettings.from_env().environment,
        }
