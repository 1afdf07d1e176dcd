"""The worker: startup, the reserve/perform loop, signals, shutdown. Read it top to bottom.

Per job, the worker sends one script to Redis (``WorkerStore.step``): it acknowledges the
previous job and reserves the next. An idle worker blocks on a pub/sub socket that our
enqueuers publish to, so it wakes about a millisecond after a push; jobs pushed by Ruby or Perl
are found by the ``interval`` poll (or at once when Redis keyspace notifications are on).
"""

from __future__ import annotations

import fnmatch
import gc
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import TYPE_CHECKING, Any

import redis
import setproctitle

from resque import child, jobs, layout
from resque.child import WORKER_HOOKS, worker_hook  # noqa: F401 - resque.worker.worker_hook
from resque.client import Client
from resque.connection import (
    Backoff,
    Outage,
    after_refusal,
    describe,
    is_transient,
    refresh_master,
    unavailable_error,
)
from resque.errors import BadPayload, DirtyExit, NoQueueError, TermException
from resque.failure import Failure, FailureBackend, backend_from_name, records, save_quietly
from resque.forkserver import ForkServer, ForkServerUnavailable
from resque.metrics import record_sample
from resque.recovery import Pruner
from resque.store import (
    ACK_DIRTY,
    ACK_FAILED,
    ACK_OK,
    ACK_REQUEUE,
    NOT_NOW,
    NOT_RUN,
    PAUSED,
    Ack,
    Acks,
    Reserved,
    WorkerStore,
)

if TYPE_CHECKING:
    from resque.durations import DurationRecorder

log = logging.getLogger("resque.worker")

_WILDCARDS = set("*?[]{}")
# Keyspace events that remove from a list: no reason to wake up.
_NOT_A_PUSH = {b"lpop", b"rpop", b"lrem", b"ltrim", b"del", b"lmove", b"rpoplpush", b"expired"}
BATCH_SECONDS = 0.05  # an in-process batch is halved when it takes longer than this


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    try:
        return float(value) if value else default
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


class Worker:
    """A Resque worker. ``Worker(["high", "low"]).work()`` or, Perl style,
    ``Resque(redis=...).worker()`` then ``add_queue("q")`` and ``work()``.

    Options match the CLI: ``interval`` (seconds between polls for jobs pushed by others; 0
    exits when the queues are empty, as does ``burst``), ``fork`` (a child per job),
    ``max_jobs``, ``term_timeout``/``term_child``/``graceful_term`` (shutdown), and the
    recovery settings ``heartbeat_interval``, ``heartbeat_expiry`` and ``prune_interval``;
    ``job_metrics`` times each job into the farm's histograms (``resque.durations``).
    """

    def __init__(
        self,
        queues: Sequence[str] | str = (),
        *,
        resque: Client | None = None,
        redis: redis.Redis | str | None = None,
        interval: float = 5.0,
        burst: bool = False,
        fork: bool = True,
        max_jobs: int | None = None,
        term_timeout: float = 4.0,
        term_child: bool = False,
        graceful_term: bool = False,
        heartbeat_interval: float = 60.0,
        heartbeat_expiry: float = 300.0,
        prune_interval: float = 30.0,
        requeue_limit: int = 2,
        max_batch: int = 64,
        fork_server: bool = True,
        preload: Sequence[str] = (),
        concurrency: int = 1,
        failure_backend: str | FailureBackend | None = None,
        hostname: str | None = None,
        procline_prefix: str = "",
        job_metrics: bool = False,
    ) -> None:
        self.resque = resque or Client(redis)
        self.keys = self.resque.keys
        self.patterns: list[str] = []
        self.skip: list[str] = []
        for queue in [queues] if isinstance(queues, str) else queues:
            self.add_queue(queue)
        if interval < 0:
            raise ValueError("interval must be >= 0")
        self.interval = interval
        self.burst = burst or interval == 0
        self.fork = fork and hasattr(os, "fork")
        self.max_jobs = max_jobs
        self.term_timeout = term_timeout
        self.term_child = term_child
        self.graceful_term = graceful_term
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_expiry = heartbeat_expiry
        self.prune_interval = prune_interval
        self.requeue_limit = requeue_limit
        self.failure = backend_from_name(failure_backend)  # None: FAILURE_BACKEND, then redis
        self.hostname = hostname or socket.gethostname()
        self.procline_prefix = procline_prefix
        self.hooks: dict[str, list[Callable[..., Any]]] = {kind: [] for kind in WORKER_HOOKS}
        # Jobs fork from a small fork server unless this worker needs state only it has.
        self.fork_server = fork_server and isinstance(failure_backend, (str, type(None)))
        self.preload = list(preload)
        self._failure_spec = failure_backend if isinstance(failure_backend, str) else None
        self._fork_server: ForkServer | None = None
        # -c N: N threads perform jobs in this process (async def jobs share one event loop).
        self.concurrency = max(1, concurrency)
        if self.concurrency > 1:
            self.fork = False
        self._threads: ThreadPoolExecutor | None = None
        self.jobs_processed = 0
        self.pid = os.getpid()
        self._shutdown = False  # stop taking jobs
        self._stop_job = False  # also stop the running job (TERM/INT)
        self._paused = False  # USR2
        self._child: int | None = None
        self._in_job = False
        self._stopping_child = False
        self._idle = False
        self._queue_cache: tuple[float, list[str]] = (0.0, [])
        self._wakeup: tuple[int, int] | None = None
        self._pubsub: Any = None
        self._last_drain = 0.0
        self._pubsub_broken = False
        self._steps = 0  # tokens for STEP calls, so a retried step is never run twice
        self.max_batch = max(1, max_batch) if not self.fork else 1
        self._batch = 1
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None
        self._channels = 2  # subscribe to wake-ups and keyspace events (1: wake-ups, 0: none)
        self._reported: dict[str, str] = {}  # what failed last, per background task
        self._bad_names: set[str] = set()
        # One log line when Redis stops answering and one when it is back, whoever sees it.
        self.outage = Outage(describe(self.resque.redis), log)
        self.store = WorkerStore(self.resque.redis, self.keys, self.id)
        self.durations: DurationRecorder | None = None
        if job_metrics:  # imported only when asked for: no cost at all otherwise
            from resque.durations import DurationRecorder

            self.durations = DurationRecorder(self.resque.redis, self.keys)

    @classmethod
    def from_env(cls, queues: Sequence[str] = (), **options: Any) -> Worker:
        """A worker configured from Ruby's environment variables, then ``options``."""
        env_queues = os.environ.get("QUEUES") or os.environ.get("QUEUE") or ""
        settings: dict[str, Any] = {
            "interval": _env_float("INTERVAL", 5.0),
            "term_timeout": _env_float("RESQUE_TERM_TIMEOUT", 4.0),
            "term_child": _env_flag("TERM_CHILD"),
            "graceful_term": _env_flag("GRACEFUL_TERM"),
            "heartbeat_interval": _env_float("RESQUE_HEARTBEAT_INTERVAL", 60.0),
            "heartbeat_expiry": _env_float("RESQUE_HEARTBEAT_EXPIRY", 300.0),
            "prune_interval": _env_float("RESQUE_PRUNE_INTERVAL", 30.0),
            "requeue_limit": int(_env_float("RESQUE_REQUEUE_LIMIT", 2)),
            "max_batch": int(_env_float("RESQUE_MAX_BATCH", 64)),
            "concurrency": int(_env_float("RESQUE_CONCURRENCY", 1)),
            "fork_server": os.environ.get("RESQUE_FORK_SERVER", "1").strip().lower()
            not in ("0", "false", "no"),
            "procline_prefix": os.environ.get("RESQUE_PROCLINE_PREFIX", ""),
            "job_metrics": _env_flag("RESQUE_JOB_METRICS"),
        }
        if os.environ.get("FORK_PER_JOB", "").strip().lower() == "false":
            settings["fork"] = False
        settings.update({k: v for k, v in options.items() if v is not None})
        return cls(list(queues) or env_queues.split(","), **settings)

    # --- identity and queues ------------------------------------------------------------

    @property
    def id(self) -> str:
        """``host:pid:queues`` as Ruby writes it (``!exclusions`` left out)."""
        return layout.worker_id(self.hostname, self.pid, self.patterns)

    def __str__(self) -> str:
        return self.id

    def add_queue(self, queue: str) -> None:
        """Listen on one more queue (lowest priority so far); ``!name`` excludes a pattern."""
        for name in str(queue).split(","):
            name = name.strip()
            if not name:
                continue
            if any(ch.isspace() for ch in name):
                raise NoQueueError(f"queue name {name!r} contains whitespace")
            (self.skip if name.startswith("!") else self.patterns).append(name.lstrip("!"))
        if hasattr(self, "store"):
            self.store = WorkerStore(self.resque.redis, self.keys, self.id)

    @property
    def dynamic(self) -> bool:
        return bool(self.skip) or any(ch in _WILDCARDS for p in self.patterns for ch in p)

    def queues(self) -> list[str]:
        """The queues to check, in priority order; patterns expand against ``queues``.

        Ruby re-reads the set before every reserve; we cache it for a second, which keeps the
        per-job path at one round trip while new queues still show up at once.
        """
        if not self.dynamic:
            return self.patterns
        at, cached = self._queue_cache
        now = time.monotonic()
        if now - at < 1.0:
            return cached
        known = self.store.queue_names()
        found: list[str] = []
        for pattern in self.patterns:
            for name in known:
                if _ruby_fnmatch(pattern, name) and not any(
                    _ruby_fnmatch(s, name) for s in self.skip
                ) and name not in found and self._usable_name(name):
                    found.append(name)
        self._queue_cache = (now, found)
        return found

    def _usable_name(self, name: str) -> bool:
        """A name from the ``queues`` set that is not valid UTF-8 cannot be named in a
        command through redis-py: skip that queue (logged once) rather than stop."""
        try:
            name.encode("utf-8")
            return True
        except UnicodeEncodeError:
            if name not in self._bad_names:
                self._bad_names.add(name)
                log.error("queue name %s in the queues set is not valid UTF-8: skipped, and "
                          "nothing in it is touched", ascii(name))
            return False

    # --- the life of a worker -----------------------------------------------------------

    def work(self) -> None:
        """Register, process jobs until told to stop (or, in burst mode, until idle), exit."""
        if not self.patterns:
            raise NoQueueError("Please give each worker at least one queue.")
        self.pid = os.getpid()
        self.store = WorkerStore(self.resque.redis, self.keys, self.id)
        self.store.failure_target = self.failure.redis_target
        self.set_title(layout.STARTING_TITLE, bare=True)
        self._install_signals()
        try:
            self.startup()
            self.loop()
        finally:
            self.unregister()

    def startup(self) -> None:
        """Ruby's order: heartbeat, prune, ``before_first_fork``, register; then subscribe.

        A worker started while Redis is away waits for it (one log line), as a running one
        does. Jobs left in flight under this very id (a dead worker whose pid we reuse, as
        in a restarted container) are requeued first: no pruner would ever act for them.
        """
        self._until_answered(self._requeue_leftovers, "requeueing jobs left in flight")
        self._until_answered(lambda: self.store.heartbeat(clear=True), "heartbeat")
        self.pruner = Pruner(
            self.store, self.hostname, self.heartbeat_expiry, int(self.prune_interval),
            self.failure, self.requeue_limit,
        )
        self._prune()
        self.run_hooks("before_first_fork")
        self._until_answered(lambda: self.store.register(layout.started_at()), "registering")
        if self._shutdown:
            return
        self._pubsub_broken = True
        self._resubscribe()
        if self.fork:
            child.load_prctl()
            self._start_fork_server()
        if self.concurrency > 1:
            self._start_threads()
        self._beat_thread = threading.Thread(target=self._beat, name="resque-heartbeat")
        self._beat_thread.daemon = True
        self._beat_thread.start()
        if self.durations is not None:
            self.durations.start()
        log.info("worker %s started (%s)", self.id, "fork per job" if self.fork else "no fork")

    def _requeue_leftovers(self) -> None:
        requeued = self.store.unregister()
        if requeued:
            log.warning("requeued %d job(s) left in flight by an earlier worker with this id "
                        "(%s)", requeued, self.id)

    def _until_answered(self, action: Callable[[], Any], task: str) -> None:
        """Run a startup step, retrying with backoff while Redis is away (not once stopped).
        A refused password is not an outage: it ends the worker with a clear error. A key of
        the wrong type (another tool's bug) is reported and the worker starts anyway."""
        backoff = Backoff()
        while not self._shutdown:
            try:
                action()
            except redis.AuthenticationError as exc:
                raise unavailable_error(self.resque.redis, exc) from exc
            except redis.RedisError as exc:
                if not is_transient(exc):
                    self._report(task, exc)
                    return
                self.outage.failed(exc)
                after_refusal(self.resque.redis, exc)
                self._sleep(backoff.next())
                continue
            self.outage.recovered()
            self._report(task, None)
            return

    def loop(self) -> None:
        """Take jobs in strict priority order until shutdown: one round trip per batch.

        Each step acknowledges the jobs just performed and reserves the next batch from the
        first non-empty queue. In-process, the batch grows while jobs are quick (up to
        ``max_batch``) and shrinks when they are not, so priority is re-checked at least
        every ``BATCH_SECONDS``; forking workers take one job per step.
        """
        acks = Acks()
        while not self._shutdown:
            if self._paused:
                acks = self._flush(acks)
                self.set_title(layout.TITLE_PAUSED)  # USR2 may have come while forking
                self._wait(self.interval or 1.0)
                continue
            batch = self._step(acks, self._batch_size())
            acks = Acks()
            if batch is PAUSED:
                self.set_title(layout.TITLE_PAUSED)
                self._wait(self.interval or 1.0)
                continue
            assert isinstance(batch, list)
            if not batch:
                self._become_idle()  # Ruby runs queue_empty before a burst worker exits too
                if self.burst:
                    break
                self._wait(self.interval)
                continue
            self._idle = False
            started = time.monotonic()
            if self._threads is not None:  # -c N: the whole batch at once, N threads
                for job, ack in zip(batch, self._threads.map(self.process, batch), strict=True):
                    acks.add(ack, job)
                self.jobs_processed += len(batch)
            for job in batch if self._threads is None else ():
                if self._shutdown and acks:
                    break  # the rest stay in flight and are requeued at unregister
                acks.add(self.process(job), job)
                self.jobs_processed += 1
            self._adapt_batch(len(batch), time.monotonic() - started)
            if self.max_jobs and self.jobs_processed >= self.max_jobs:
                break
            self._keep_pubsub_drained()
        self._flush(acks)
        if self._shutdown:
            self.run_hooks("shutdown")

    def _batch_size(self) -> int:
        if self.concurrency > 1:  # one job per thread; all of them start at once
            left = self.max_jobs - self.jobs_processed if self.max_jobs else self.concurrency
            return max(1, min(self.concurrency, left))
        if self.max_jobs:
            return max(1, min(self._batch, self.max_jobs - self.jobs_processed))
        return self._batch

    def _adapt_batch(self, taken: int, seconds: float) -> None:
        """Double the batch while whole batches run in under ``BATCH_SECONDS``; halve it
        when one takes longer, so a slow queue goes back to one job per step."""
        if self.fork or self.max_batch <= 1:
            return
        if seconds > BATCH_SECONDS:
            self._batch = max(1, self._batch // 2)
        elif taken == self._batch and seconds < BATCH_SECONDS / 2:
            self._batch = min(self.max_batch, self._batch * 2)

    def _flush(self, acks: Acks) -> Acks:
        if acks:
            self._step(acks, 0)
        return Acks()

    def _step(self, acks: Acks, reserve: int) -> list[Reserved] | object:
        """One ``STEP`` (acknowledge, then reserve) that survives a Redis outage.

        On a connection error it retries with backoff and jitter until Redis answers, logging
        one line when the outage starts and one when it ends. A step whose reply was lost is
        never run twice: its token is in the in-flight list if it ran (``step_outcome``), so a
        job finished during the outage is acknowledged exactly once when Redis returns.
        """
        self._steps += 1
        token = str(self._steps)
        failed_at: float | None = None
        backoff = Backoff()
        while True:
            try:
                result = (
                    NOT_RUN if failed_at is None
                    else self.store.step_outcome(token, acks.last_token)
                )
                if result is NOT_RUN:
                    queues = self.queues() if reserve else []
                    result = self.store.step(acks, queues, reserve, time.time(), token)
            except redis.RedisError as exc:
                if str(exc).startswith(NOT_NOW):  # refused before writing anything
                    self._report("acknowledging jobs", exc)
                    self._sleep(backoff.next())
                    continue
                if not is_transient(exc):
                    raise
                self.outage.failed(exc)
                after_refusal(self.resque.redis, exc)
                if failed_at is None:
                    failed_at = time.monotonic()
                elif self._shutdown and time.monotonic() - failed_at > self.term_timeout:
                    raise  # stopping: the jobs stay in flight and a pruner requeues them
                self._sleep(backoff.next())
                continue
            self.outage.recovered()
            if "acknowledging jobs" in self._reported:
                self._report("acknowledging jobs", None)
            return result

    def _become_idle(self) -> None:
        if not self._idle:
            self._idle = True
            self.run_hooks("queue_empty")
        self.set_title(layout.title_waiting(self.patterns))

    def unregister(self) -> None:
        """Stop the heartbeat, requeue anything in flight, delete every key of this worker."""
        self._beat_stop.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout=5)
        if self.durations is not None:
            self.durations.close()
        if self._fork_server is not None:
            self._fork_server.close()
            self._fork_server = None
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
            jobs.awaiter = self._default_awaiter
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # noqa: BLE001 - closing a dead socket must not stop cleanup
                pass
        try:
            requeued = self.store.unregister()
            if requeued:
                log.info("requeued %d unfinished job(s) at shutdown", requeued)
        except redis.RedisError as exc:
            log.error("could not unregister %s: %s (its jobs stay in flight and a pruner will "
                      "requeue them)", self.id, exc)
        self._restore_signals()
        self.run_hooks("worker_exit")
        log.info("worker %s exited after %d job(s)", self.id, self.jobs_processed)

    # --- one job ------------------------------------------------------------------------

    def process(self, reserved: Reserved) -> Ack:
        """Perform one reserved job and say how to acknowledge it. Never raises."""
        try:
            payload = layout.decode_job(reserved.raw, reserved.queue)
        except BadPayload as exc:
            return self._failure(ACK_FAILED, reserved, _unreadable(reserved.raw), exc)
        name = payload["class"]
        try:
            target = self.resque.registry.resolve(name, self.resque.allowed_modules)
        except Exception as exc:  # not found, forbidden, or an allowed module failed to import
            return self._failure(ACK_FAILED, reserved, payload, exc)
        started = time.perf_counter()
        if self.fork:
            ack = self._perform_in_child(reserved, payload, target)
        else:
            ack = self._perform_here(reserved, payload, target)
        if self.durations is not None and ack.mode != ACK_REQUEUE:  # requeued: it runs again
            self.durations.observe(reserved.queue, name, time.perf_counter() - started,
                                   ack.mode != ACK_OK)
        return ack

    def _perform_here(self, reserved: Reserved, payload: dict[str, Any], target: Any) -> Ack:
        if self._threads is not None:
            return self._perform_in_thread(reserved, payload, target)
        self.set_title(layout.title_processing(reserved.queue, int(time.time()), payload["class"]))
        self._in_job = True
        try:
            jobs.run(target, payload["args"], payload["class"])
            return Ack(ACK_OK)
        except BaseException as exc:  # a job may raise anything, SystemExit included
            if self._stop_job and isinstance(exc, TermException):
                return Ack(ACK_REQUEUE)
            return self._failure(ACK_FAILED, reserved, payload, exc)
        finally:
            self._in_job = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _perform_in_thread(
        self, reserved: Reserved, payload: dict[str, Any], target: Any
    ) -> Ack:
        """A job on one of the ``-c N`` threads: it cannot be interrupted, so a stop lets it
        finish (``TERM`` acts as ``QUIT``)."""
        self.set_title(layout.title_processing(reserved.queue, int(time.time()), payload["class"]))
        try:
            jobs.run(target, payload["args"], payload["class"])
            return Ack(ACK_OK)
        except BaseException as exc:  # a job may raise anything, SystemExit included
            return self._failure(ACK_FAILED, reserved, payload, exc)

    def _perform_in_child(self, reserved: Reserved, payload: dict[str, Any], target: Any) -> Ack:
        """Fork a child for the job (from the fork server when there is one), wait for it,
        and turn how it ended into an acknowledgement."""
        self.run_hooks("before_fork", payload)
        title = self._title(
            layout.title_processing(reserved.queue, int(time.time()), payload["class"])
        )
        try:
            pid, status, report = self._fork(reserved, payload, target, title)
            report = report.removeprefix(child.REPORT_DONE)
        finally:
            self._child = None
            signal.setitimer(signal.ITIMER_REAL, 0)
        stopped_by_us, self._stopping_child = self._stopping_child, False
        if os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0:
            if stopped_by_us and self._stop_job:
                return Ack(ACK_REQUEUE)
            if os.WIFSIGNALED(status):
                signum = os.WTERMSIG(status)
                message = layout.child_signal_message(pid, signal.Signals(signum).name, signum)
            else:
                message = f"Child process exited with status {os.WEXITSTATUS(status)}"
            error = DirtyExit(message)
            jobs.run_failure_hooks(target, error, payload["args"])
            return self._failure(ACK_DIRTY, reserved, payload, error)
        if not report:
            return Ack(ACK_OK)
        if self._stop_job and report.startswith(child.REPORT_TERMINATED):
            return Ack(ACK_REQUEUE)
        return Ack(ACK_FAILED, report[1:].decode("utf-8", "surrogateescape"), reserved.queue)

    def _fork(
        self, reserved: Reserved, payload: dict[str, Any], target: Any, title: str
    ) -> tuple[int, int, bytes]:
        """``(pid, wait status, report)`` of a child that performed the job."""
        server = self._fork_server
        if server is not None:
            try:
                return server.run(reserved.queue, reserved.raw, title, self._child_started)
            except ForkServerUnavailable as exc:
                if self._child is not None:  # it died mid-job, and its child with it
                    self._drop_fork_server(f"it stopped during a job ({exc})")
                    return self._child, signal.SIGKILL, b""
                if not server.alive():
                    self._drop_fork_server(str(exc))
        jobs.warm(target)
        read_end, write_end = os.pipe()
        gc.freeze()  # keep the parent's objects out of the child's GC: pages stay shared
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            child.child_main(
                write_end, queue=reserved.queue, raw=reserved.raw, payload=payload,
                target=target, worker=self.id, title=title, failure=self.failure,
                after_fork=self.hooks["after_fork"],
            )
        gc.unfreeze()
        os.close(write_end)
        self._child_started(pid)
        try:
            report = child.read_all(read_end)
            _, status = os.waitpid(pid, 0)
        finally:
            os.close(read_end)
        return pid, status, report

    def _child_started(self, pid: int) -> None:
        self._child = pid
        self.set_title(layout.title_forked(pid, int(time.time())))
        if self._stop_job:  # a stop that arrived while the child was being forked
            self.stop_job()

    def _start_threads(self) -> None:
        """N job threads, and one event loop (its own thread) that ``async def`` jobs share,
        so N of them can wait on I/O at once."""
        import asyncio

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="resque-loop", daemon=True).start()

        def on_loop(awaitable: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(jobs.as_coroutine(awaitable), loop).result()

        self._default_awaiter = jobs.awaiter
        jobs.awaiter = on_loop
        self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix="resque-job")

    def _start_fork_server(self) -> None:
        if not (self.fork and self.fork_server) or self.hooks["after_fork"]:
            return
        modules = {*self.preload, *_job_modules(self.resque.registry)}
        failure = self._failure_spec or os.environ.get("FAILURE_BACKEND") or "redis"
        try:
            self._fork_server = ForkServer.start(
                sorted(modules), self.resque.allowed_modules, self.id, failure,
                self._title(f"Fork server of {self.pid}"),
            )
        except (ForkServerUnavailable, OSError) as exc:
            log.warning("no fork server (%s): forking jobs from the worker itself", exc)

    def _drop_fork_server(self, why: str) -> None:
        log.warning("fork server gone (%s): forking jobs from the worker itself", why)
        server, self._fork_server = self._fork_server, None
        if server is not None:
            server.close()

    def _failure(self, mode: str, reserved: Reserved, payload: Any, exc: BaseException) -> Ack:
        record = records.from_exception(payload, exc, self.id, reserved.queue, reserved.raw)
        if self.failure.saves:  # a non-Redis backend (in fork mode the child calls it)
            save_quietly(self.failure, Failure(record, reserved.queue, payload, exc))
        return Ack(mode, record, reserved.queue)

    # --- waiting without polling --------------------------------------------------------

    def _subscribe(self) -> None:
        """Listen for our enqueuers' wake-ups (and keyspace events, if the server has them)."""
        db = int(self.resque.redis.connection_pool.connection_kwargs.get("db", 0))
        self._pubsub = self.resque.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        if self._channels == 0:
            return  # Redis refused every channel (ACL): the interval poll finds the jobs
        # Wake-ups and keyspace events in separate commands: an ACL user allowed only the
        # namespace's channels is refused the second one alone (see _drain).
        if self.dynamic:
            self._pubsub.psubscribe(self.keys.wake_pattern)
            if self._channels > 1:
                self._pubsub.psubscribe(self.keys.keyspace_channel(db, self.keys.queue("*")))
        else:
            self._pubsub.subscribe(*[self.keys.wake_channel(q) for q in self.patterns])
            if self._channels > 1:
                self._pubsub.subscribe(
                    *[self.keys.keyspace_channel(db, self.keys.queue(q)) for q in self.patterns]
                )
        self._drain()

    def _drain(self) -> int:
        """Read every pending wake-up; returns how many could mean a new job."""
        pubsub = self._pubsub
        count = 0
        try:
            while pubsub.connection is not None and pubsub.connection.can_read(timeout=0):
                message = pubsub.get_message(timeout=0)
                if message is not None and message["data"] not in _NOT_A_PUSH:
                    count += 1
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._pubsub_broken = True
            count += 1  # a broken subscription counts as a wake-up: the next step will tell
        except redis.ResponseError as exc:  # NOPERM: an ACL that forbids these channels
            self._channels -= 1
            log.warning("Redis refused a subscription (%s): %s", exc, (
                "keyspace events are not used; jobs pushed by Ruby or Perl are found by the "
                "interval poll" if self._channels == 1 else
                "no wake-ups either; every job is found by the interval poll"))
            self._pubsub_broken = True
            count += 1
        self._last_drain = time.monotonic()
        return count

    def _resubscribe(self) -> None:
        """After an outage: a fresh subscription (or, while Redis is still away, none)."""
        try:
            self._pubsub.close()
        except Exception:  # noqa: BLE001 - the old socket is already dead
            pass
        try:
            self._subscribe()
            self._pubsub_broken = False
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass

    def _keep_pubsub_drained(self) -> None:
        # A busy worker still reads its wake-ups now and then so Redis's pub/sub output
        # buffer limit never disconnects it.
        if time.monotonic() - self._last_drain > 1.0:
            self._drain()

    def _wait(self, timeout: float) -> None:
        """Sleep until a wake-up, a signal, or ``timeout``: whichever comes first."""
        if self._shutdown:
            return
        if self._pubsub_broken:
            self._resubscribe()
        if not self._pubsub_broken and self._drain():
            self._queue_cache = (0.0, [])  # the wake-up may be for a queue new to a wildcard
            return
        if self._wakeup is None:
            time.sleep(min(timeout, 0.1))
            return
        fds = [self._wakeup[0]]
        sock = None if self._pubsub_broken else getattr(self._pubsub.connection, "_sock", None)
        if sock is not None:
            fds.append(sock.fileno())
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except (OSError, ValueError):
            return
        if self._wakeup[0] in readable:
            try:
                while os.read(self._wakeup[0], 512):
                    pass
            except BlockingIOError:
                pass

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once for a signal (the wake-up pipe)."""
        if self._wakeup is None:
            time.sleep(seconds)
            return
        try:
            select.select([self._wakeup[0]], [], [], seconds)
        except (OSError, ValueError):
            pass

    # --- heartbeat and pruning (a background thread) ------------------------------------

    def _beat(self) -> None:
        next_beat = time.monotonic() + self.heartbeat_interval
        next_prune = time.monotonic() + self.prune_interval
        while not self._beat_stop.wait(max(0.05, min(next_beat, next_prune) - time.monotonic())):
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + self.heartbeat_interval
                self._background("heartbeat", self._heartbeat)
            if now >= next_prune:
                next_prune = now + self.prune_interval
                self._prune()

    def _heartbeat(self) -> None:
        refresh_master(self.resque.redis)
        self.store.heartbeat()
        if not self.store.is_registered():
            log.warning("%s was unregistered by someone else; registering again", self.id)
            self.store.register(layout.started_at())
        record_sample(self.resque.redis, self.keys)  # the dashboard's charts

    def _prune(self) -> None:
        self._background("pruning dead workers", self.pruner.prune)

    def _background(self, task: str, action: Callable[[], Any]) -> None:
        """Run a background task; Redis being away is the outage (one line for the whole
        worker), any other Redis error is the task's own (one line until it changes)."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - the heartbeat thread must never die
            if is_transient(exc):
                self.outage.failed(exc)
            else:
                self._report(task, exc)
        else:
            self.outage.recovered()
            self._report(task, None)

    def _report(self, task: str, exc: BaseException | None) -> None:
        """Log a background task's error when it starts or changes, and when it clears:
        a bad key (WRONGTYPE) is reported once, not every second."""
        message = "" if exc is None else str(exc)
        if self._reported.get(task, "") == message:
            return
        self._reported[task] = message
        if exc is None:
            log.warning("%s works again", task)
        else:
            log.error("%s failed: %s (the worker goes on; retried every few seconds)", task,
                      message)

    # --- signals ------------------------------------------------------------------------

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.warning("worker not in the main thread: signals are not handled")
            return
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        self._wakeup = (read_end, write_end)
        # An embedding application (an asyncio loop, say) may have its own wake-up fd.
        self._previous_wakeup_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._previous_handlers = {
            signum: signal.signal(signum, handler)
            for signum, handler in (
                (signal.SIGTERM, self._on_term),
                (signal.SIGINT, self._on_term),
                (signal.SIGQUIT, self._on_quit),
                (signal.SIGUSR1, self._on_usr1),
                (signal.SIGUSR2, self._on_usr2),
                (signal.SIGCONT, self._on_cont),
                (signal.SIGALRM, self._on_alarm),
            )
        }

    def _restore_signals(self) -> None:
        if self._wakeup is None:
            return
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        for fd in self._wakeup:
            os.close(fd)
        self._wakeup = None

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGTERM and self.graceful_term:
            return self._on_quit(signum, frame)
        again = self._stop_job
        log.info("%s: stopping%s", signal.Signals(signum).name, " now" if again else "")
        self._shutdown = self._stop_job = True
        self.stop_job(force=again)

    def _on_quit(self, signum: int, frame: FrameType | None) -> None:
        log.info("QUIT: finishing the current job, then exiting")
        self._shutdown = True

    def _on_usr1(self, signum: int, frame: FrameType | None) -> None:
        if self._child:
            log.info("USR1: killing child %s", self._child)
            self._kill_child(signal.SIGTERM if self.term_child else signal.SIGKILL)
            if self.term_child:
                signal.setitimer(signal.ITIMER_REAL, max(self.term_timeout, 0.001))

    def _on_usr2(self, signum: int, frame: FrameType | None) -> None:
        if not self._paused:
            log.info("USR2: pausing")
            self.run_hooks("before_pause", self)
            self._paused = True
            self.set_title(layout.TITLE_PAUSED)

    def _on_cont(self, signum: int, frame: FrameType | None) -> None:
        if self._paused:
            log.info("CONT: resuming")
            self._paused = False
            self.run_hooks("after_pause", self)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        """The grace period of a stop is over: kill the child, or interrupt the job."""
        self.stop_job(force=True)

    def stop_job(self, force: bool = False) -> None:
        """Stop the running job: after ``term_timeout`` (sooner with ``term_child``), or now."""
        if self._child:
            if force:
                self._kill_child(signal.SIGKILL)
                return
            if self.term_child:
                self._kill_child(signal.SIGTERM)
        elif self._in_job and (force or self.term_child):
            signal.setitimer(signal.ITIMER_REAL, 0)
            raise TermException("SIGTERM")
        if self._child or self._in_job:
            signal.setitimer(signal.ITIMER_REAL, max(self.term_timeout, 0.001))

    def _kill_child(self, signum: int) -> None:
        child = self._child
        if child:
            self._stopping_child = True
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    # --- small helpers ------------------------------------------------------------------

    def set_title(self, state: str, bare: bool = False) -> None:
        title = state if bare else self._title(state)
        setproctitle.setproctitle(title)
        log.debug(title)

    def _title(self, state: str) -> str:
        from resque import __version__

        return layout.process_title(__version__, state, self.procline_prefix)

    def run_hooks(self, kind: str, *args: Any) -> None:
        """Run worker hooks; a failing hook is logged and never stops the worker."""
        child.run_hooks(kind, self.hooks[kind], *args)


def _job_modules(registry: jobs.Registry) -> set[str]:
    """Modules that define registered jobs: what the fork server imports."""
    found = set()
    for name in registry.names():
        target = registry.get(name)
        module = getattr(getattr(target, "func", target), "__module__", None)
        if module and module != "__main__":
            found.add(module)
    return found


def _ruby_fnmatch(pattern: str, name: str) -> bool:
    """``File.fnmatch?`` without flags: ``*``/``?``/``[..]``; a leading dot needs a dot."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _unreadable(raw: bytes) -> Any:
    """The payload to record for an item that is not a job: keep it whole."""
    try:
        value = layout.decode(raw)
        if isinstance(value, dict):
            return value
    except ValueError:
        pass
    return layout.unreadable_payload(raw)


def work(queues: Iterable[str], **options: Any) -> None:
    """Shortcut: ``resque.worker.work(["high", "low"], fork=False)``."""
    Worker(list(queues), **options).work()
