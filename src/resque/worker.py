"""The worker: start, step, perform, stop. ``loop`` is the whole cycle of a job; read it first.

Per job (per batch, in process) the worker sends Redis one script (``WorkerStore.step``): it
acknowledges the jobs just performed and reserves the next ones, which its executor performs
(``execution/``: a child per job, in process, or on threads) and acknowledges in turn. Around
the loop: an idle worker waits for a wake-up (``wakeup.py``), signals become intents
(``signals.py``), a thread writes the heartbeat and prunes dead workers (``heartbeat.py``,
``recovery.py``). Every setting, with its default, is a field of ``WorkerSettings``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import redis
import setproctitle

from resque import __version__, layout, logs
from resque import pidfile as pidfiles
from resque.client import Client
from resque.connection import Outage, describe
from resque.errors import NoQueueError
from resque.execution.base import Executor, Stop
from resque.execution.fork import ForkExecutor
from resque.execution.inline import InlineExecutor
from resque.execution.threads import ThreadExecutor
from resque.failure import backend_from_name
from resque.heartbeat import Heartbeat
from resque.hooks import WORKER_HOOKS, Hook, no_hooks, run_hooks, worker_hook
from resque.outages import Retries
from resque.queues import QueueList
from resque.recovery import Pruner
from resque.settings import WorkerSettings
from resque.signals import Intent, SignalHandlers
from resque.store import ACK_DEFERRED, Ack, Acks, Reserved, Step, WorkerStore
from resque.wakeup import Wakeup

if TYPE_CHECKING:
    from resque.durations import DurationRecorder

__all__ = ["WORKER_HOOKS", "Worker", "work", "worker_hook"]

log = logging.getLogger("resque.worker")
ACKNOWLEDGING = "acknowledging jobs"  # the task named when Redis refuses a step


class Worker:
    """A Resque worker: ``Worker(["high", "low"]).work()``, or Perl's shape,
    ``Resque(redis=...).worker()``, then ``add_queue("q")`` and ``work()``.

    ``options`` are fields of ``WorkerSettings`` (``fork=False``, ``interval=0``, ...),
    applied over ``settings``; ``Worker.from_env`` starts from Ruby's environment variables.
    """

    def __init__(self, queues: Sequence[str] | str = (), *, resque: Client | None = None,
                 redis: redis.Redis | str | None = None, settings: WorkerSettings | None = None,
                 **options: Any) -> None:
        settings = (settings or WorkerSettings()).replace(**options)
        self.settings = settings.replace(queues=queues) if queues else settings
        self.resque = resque or Client(redis)
        self.keys = self.resque.keys
        self.queue_list = QueueList(self.settings.queues)
        self.hostname = settings.hostname or socket.gethostname()
        self.failure = backend_from_name(settings.failure_backend)  # None: FAILURE_BACKEND
        self.hooks: dict[str, list[Hook]] = no_hooks()  # this worker's, after the global ones
        self.fork = settings.fork and settings.concurrency == 1 and hasattr(os, "fork")
        self.burst = settings.burst or settings.interval == 0
        self.pid = os.getpid()
        self.stop = Stop()
        self.jobs_processed = 0
        self._paused = self._idle = self._held = False
        self._steps = 0  # step tokens, so that a step sent again is never run twice
        self._title = ""  # the process title last set
        self.store = WorkerStore(self.resque.redis, self.keys, self.id)
        self.wakeup = Wakeup(self.resque.redis, self.keys, self.queue_list)
        # One log line when Redis stops answering and one when it is back, whoever sees it.
        self.outage = Outage(describe(self.resque.redis), log)
        self.retries = Retries(self.resque.redis, self.outage, self.wakeup.sleep,
                               lambda: self.stop.requested)
        self.signals = SignalHandlers(settings.graceful_term)
        self.executor = self._executor()
        self.heartbeat: Heartbeat | None = None  # started with the worker
        self.reached_redis = False  # whether anything of ours may be in Redis to clean up
        self.durations: DurationRecorder | None = None
        if settings.job_metrics:  # imported only when asked for: no cost at all otherwise
            from resque.durations import DurationRecorder

            self.durations = DurationRecorder(self.resque.redis, self.keys)

    @classmethod
    def from_env(cls, queues: Sequence[str] | str = (), *, resque: Client | None = None,
                 redis: redis.Redis | str | None = None, **options: Any) -> Worker:
        """A worker configured from Ruby's environment variables, then ``options`` that are
        not None."""
        settings = WorkerSettings.from_env(None, queues=queues or None, **options)
        return cls(resque=resque, redis=redis, settings=settings)

    def _executor(self) -> Executor:
        if self.settings.concurrency > 1:
            return ThreadExecutor(self)
        return ForkExecutor(self) if self.fork else InlineExecutor(self)

    # --- identity and queues ------------------------------------------------------------

    @property
    def id(self) -> str:
        """``host:pid:queues`` as Ruby writes it (``!exclusions`` left out)."""
        return layout.worker_id(self.hostname, self.pid, self.queue_list.patterns)

    def __str__(self) -> str:
        return self.id

    @property
    def patterns(self) -> list[str]:
        return self.queue_list.patterns

    def add_queue(self, queue: str) -> None:
        """Listen on one more queue (lowest priority so far); ``!name`` excludes a pattern."""
        self.queue_list.add(queue)
        self.settings = self.settings.replace(queues=(*self.settings.queues, queue))
        self.store = WorkerStore(self.resque.redis, self.keys, self.id)

    def queues(self) -> list[str]:
        """The queues to check now, in priority order, globs expanded."""
        return self.queue_list.expand(self.store.queue_names)

    # --- the life of a worker -----------------------------------------------------------

    def work(self, *, pidfile: str | None = None) -> None:
        """Register, process jobs until told to stop (or, in burst mode, until idle), exit.

        ``pidfile`` gets the pid once the signal handlers are in place, so a supervisor that
        signals as soon as it reads the pid never meets the default action (which kills);
        it is removed on the way out.
        """
        if not self.patterns:
            raise NoQueueError("Please give each worker at least one queue.")
        self.pid = os.getpid()
        self.store = WorkerStore(self.resque.redis, self.keys, self.id)
        self.store.failure_target = self.failure.redis_target
        self.store.concurrent = self.executor.concurrent
        self.set_title(layout.STARTING_TITLE, bare=True)
        self._handle_signals()
        with pidfiles.held(pidfile):
            try:
                self.startup()
                self.loop()
            finally:
                self.unregister()

    def startup(self) -> None:
        """Ruby's order: heartbeat, prune, ``before_first_fork``, register; then subscribe,
        and start the executor and the heartbeat thread.

        A worker started while Redis is away waits for it (one log line), as a running one
        does. Jobs left in flight under this very id (a dead worker whose pid we reuse, as
        in a restarted container) are requeued first: no pruner would ever act for them.
        """
        self.retries.until_answered("requeueing jobs left in flight", self._requeue_leftovers)
        self.reached_redis = True
        self.retries.until_answered("heartbeat", lambda: self.store.heartbeat(clear=True))
        settings = self.settings
        pruner = Pruner(self.store, self.hostname, settings.heartbeat_expiry,
                        int(settings.prune_interval), self.failure, settings.requeue_limit)
        self.heartbeat = Heartbeat(self.store, pruner, self.retries,
                                   settings.heartbeat_interval, settings.prune_interval)
        self.heartbeat.prune()
        self.run_hooks("before_first_fork")
        self.retries.until_answered("registering",
                                    lambda: self.store.register(layout.started_at()))
        if self.stop.requested:
            return
        self.wakeup.subscribe()
        self.executor.start()
        self.heartbeat.start()
        if self.durations is not None:
            self.durations.start()
        self._announce()

    def _announce(self) -> None:
        """The start-up banner: what this worker is, where its jobs come from, how they run."""
        fields: dict[str, Any] = {
            "worker": self.id, "version": __version__, "redis": describe(self.resque.redis),
            "namespace": self.keys.namespace, "queues": list(self.settings.queues),
            "mode": self.executor.mode, "concurrency": self.settings.concurrency,
        }
        log.info("resque %s worker %s started: redis %s, namespace %s, queues %s, %s",
                 __version__, self.id, fields["redis"], fields["namespace"] or "(none)",
                 ",".join(fields["queues"]), self.executor.describe(), extra={"fields": fields})
        names, allowed = self.resque.registry.names(), list(self.resque.allowed_modules)
        shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20
                                         else "")
        log.info("registered jobs: %s; dotted job paths allowed under: %s", shown or "none",
                 ", ".join(allowed) or "none", extra={"fields": {"jobs": names,
                                                                   "allowed": allowed}})

    def _requeue_leftovers(self) -> None:
        requeued = self.store.unregister()
        if requeued:
            log.warning("requeued %d job(s) left in flight by an earlier worker with this id "
                        "(%s)", requeued, self.id)

    def loop(self) -> None:
        """Take jobs in strict priority order until told to stop: one round trip per batch.

        Each step acknowledges the jobs that ended and reserves the next ones from the first
        queue that has jobs, as many as the executor has room for: in-process and forking
        modes perform the batch and say how each job ended; threads start each job at once
        and report it when it ends, so a thread takes new work as soon as it is free.
        """
        acks = self._acks()
        while not self.stop.requested and self._jobs_left() != 0:
            room = self.executor.room(self._jobs_left())
            if self._paused or not room:  # USR2, or every thread busy: take nothing now
                acks = self._flush(acks)
                self._rest() if self._paused else self._wait_for_a_job()
            else:
                step = self._step(acks, room)
                acks = self._acks()
                self._note_pause(step.paused)
                if step.paused:  # pause-all-workers
                    self._rest()
                elif step.jobs:
                    acks = self._perform(step.jobs, acks)
                    self.wakeup.keep_drained()
                elif self.executor.busy:  # threads: nothing queued, jobs still running
                    self._wait(self.settings.interval or 1.0)  # a job ending wakes it too
                else:
                    self._become_idle()  # Ruby runs queue_empty before a burst worker exits
                    if self.burst:
                        break
                    self._wait(self.settings.interval)
            acks = self._acknowledge(self.executor.finished(), acks)
        self._finish(acks)
        if self.stop.requested and not self.stop.recycle:  # --max-memory is no shutdown
            self.run_hooks("shutdown")

    def _perform(self, batch: list[Reserved], acks: Acks) -> Acks:
        """Hand the batch to the executor; what the next step acknowledges."""
        self._idle = False
        started = time.monotonic()
        ran = self.executor.run(batch)
        # After a stop the rest are not run: they stay in flight until unregister requeues them.
        acks = self._acknowledge(zip(batch, ran, strict=False), acks)
        self.executor.ran(len(batch), time.monotonic() - started)
        return acks

    def _acknowledge(self, ended: Iterable[tuple[Reserved, Ack]], acks: Acks) -> Acks:
        """Add how jobs ended to what the next step acknowledges."""
        for job, ack in ended:
            if ack.mode == ACK_DEFERRED:  # a limit deferred it: not performed, not in flight
                continue
            if ack.failure and not acks.accepts(ack, job):  # one step, one failure list
                acks = self._flush(acks)
            acks.add(ack, job)
            self.jobs_processed += 1
        return acks

    def _acks(self) -> Acks:
        return Acks(concurrent=True) if self.executor.concurrent else Acks()

    def _jobs_left(self) -> int | None:
        """Jobs to go before ``max_jobs``; None without a limit."""
        limit = self.settings.max_jobs
        return None if limit is None else limit - self.jobs_processed

    def _flush(self, acks: Acks) -> Acks:
        if acks:
            self._step(acks, 0)
        return self._acks()

    def _finish(self, acks: Acks) -> None:
        """Acknowledge what ended. Jobs still running on threads get as long as they take
        (QUIT), or until ``term_timeout`` or a second TERM (``abandoned``): then the process
        ends at once, and leaves them in flight."""
        while self.executor.busy and not self.executor.abandoned:
            acks = self._flush(acks)
            self._wait_for_a_job()
            acks = self._acknowledge(self.executor.finished(), acks)
        self._flush(acks)
        if self.executor.abandoned and self.executor.busy:
            self._abandon()

    def _abandon(self) -> NoReturn:
        """End the process now: jobs on threads cannot be stopped. They stay in this worker's
        in-flight list (the worker record shows the oldest), and a pruner requeues them once
        this pid is gone: at once on this host, or after the heartbeat expiry elsewhere;
        ``resque recover <worker>`` does it by hand."""
        left = self.executor.running()
        for job in left:
            log.warning("left in flight for recovery: job %s", _describe(job))
        log.warning("worker %s stopping now, %d job(s) still running: they stay in flight "
                    "until a pruner or `resque recover` requeues them", self.id, len(left))
        if self.durations is not None:
            self.durations.close()  # the jobs that did end are counted, as at any exit
        logging.shutdown()  # flush every handler: nothing runs after os._exit
        os._exit(1)

    def _step(self, acks: Acks, reserve: int) -> Step:
        """One step, one round trip: acknowledge ``acks``, reserve up to ``reserve`` jobs.

        It survives a Redis outage and never runs twice: after a lost reply, the step's token
        in the in-flight list tells whether it ran (``step_outcome``), so a job finished
        during the outage is acknowledged exactly once when Redis returns."""
        self._steps += 1
        token = str(self._steps)

        def attempt(maybe_ran: bool) -> Step:
            outcome = self.store.step_outcome(token, acks.last_token) if maybe_ran else None
            if outcome is not None:  # it ran; only its reply was lost
                return outcome
            queues = self.queues() if reserve else []
            acks.shows = self.executor.shows()  # threads: the record of the oldest job left
            return self.store.step(acks, queues, reserve, time.time(), token)

        return self.retries.until_done(ACKNOWLEDGING, attempt, self.settings.term_timeout)

    def _rest(self) -> None:
        """Paused: say so (USR2 may have come while forking), and wait."""
        self.set_title(layout.TITLE_PAUSED)
        self._wait(self.settings.interval or 1.0)

    def _note_pause(self, paused: bool) -> None:
        """Say when ``pause-all-workers`` starts and stops holding this worker."""
        if paused != self._held:
            self._held = paused
            log.info("paused: pause-all-workers is set (resque pause); no new jobs until it "
                     "is cleared" if paused else "resumed: pause-all-workers was cleared")

    def _wait(self, timeout: float) -> None:
        """Until a wake-up, a signal, a job ending on a thread, or ``timeout``."""
        if not self.stop.requested and self.wakeup.wait(timeout, self.executor.fileno()):
            self.queue_list.forget()  # the wake-up may be for a queue new to a wildcard

    def _wait_for_a_job(self) -> None:
        """Every thread is busy (or stopping): until one ends, or a signal comes."""
        self.wakeup.sleep(1.0, self.executor.fileno())
        self.wakeup.keep_drained()

    def _become_idle(self) -> None:
        if not self._idle:
            self._idle = True
            self.run_hooks("queue_empty")
        self.set_title(layout.title_waiting(self.patterns))

    def unregister(self) -> None:
        """Stop the heartbeat and the executor, requeue anything in flight, delete every key
        of this worker."""
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.durations is not None:
            self.durations.close()
        self.executor.close()
        self.wakeup.close()
        if self.executor.busy:  # threads we could not stop (an error ended the loop)
            log.warning("worker %s exits with %d job(s) still running on threads: they stay in "
                        "flight until a pruner or `resque recover` requeues them", self.id,
                        self.executor.busy)
        elif self.reached_redis:  # else Redis refused us at once (a password): nothing to undo
            self._unregister()
        self.signals.restore()
        self.wakeup.close_pipe()
        self.run_hooks("worker_exit")
        log.info("worker %s exited after %d job(s)", self.id, self.jobs_processed)

    def _unregister(self) -> None:
        """Requeue what is left in flight (jobs of a batch never started), delete our keys."""
        try:
            left = self.store.inflight_entries(self.id)
            if self.store.unregister():
                for _, queue, payload in left:
                    log.info("requeued at shutdown, never started: job %s",
                             _describe(Reserved(queue, payload)))
        except redis.RedisError as exc:
            log.error("could not unregister %s: %s (its jobs stay in flight and a pruner will "
                      "requeue them)", self.id, exc)

    # --- signals, as intents (signals.py) -----------------------------------------------

    def _handle_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.warning("worker not in the main thread: signals are not handled")
            return
        self.signals.install(self.act, self.wakeup.open_pipe(), self.explain)

    def explain(self, intent: Intent) -> str:
        """What a signal makes this worker do, in its mode, for the log."""
        if intent is Intent.STOP:
            return self.executor.stopping(again=self.stop.interrupt)
        return str(intent.value)

    def act(self, intent: Intent) -> None:
        """Do what a signal asks. Runs in the signal handler: a stop may raise
        ``TermException`` into a job performed in this process."""
        if intent is Intent.STOP:
            again = self.stop.interrupt
            self.stop.requested = self.stop.interrupt = True
            self.executor.stop_job(force=again)
        elif intent is Intent.FINISH:
            self.stop.requested = True
        elif intent is Intent.KILL_CHILD:
            self.executor.kill_child()
        elif intent is Intent.PAUSE:
            self.pause()
        elif intent is Intent.RESUME:
            self.resume()
        elif intent is Intent.TIME_UP:
            self.executor.stop_job(force=True)

    def pause(self) -> None:
        """Take no more jobs until ``resume`` (USR2); the running one finishes."""
        if not self._paused:
            self.run_hooks("before_pause", self)
            self._paused = True
            self.set_title(layout.TITLE_PAUSED)

    def resume(self) -> None:
        """Take jobs again (CONT)."""
        if self._paused:
            self._paused = False
            self.run_hooks("after_pause", self)

    # --- small helpers ------------------------------------------------------------------

    def title(self, state: str) -> str:
        return layout.process_title(__version__, state, self.settings.procline_prefix)

    def set_title(self, state: str, bare: bool = False) -> None:
        """Set the process title, unless it already reads so: an in-process worker's title
        changes once a second at most (``Processing q since <epoch>``), and each setting
        costs as much as a no-op job."""
        title = state if bare else self.title(state)
        if title != self._title:
            self._title = title
            setproctitle.setproctitle(title)
            log.debug(title)

    def run_hooks(self, kind: str, *args: Any) -> None:
        """Run worker hooks; a failing hook is logged and never stops the worker."""
        run_hooks(kind, self.hooks[kind], *args)


def _describe(job: Reserved) -> str:
    """``Class (id 42) from queue`` of a reserved job, for log lines."""
    try:
        payload: Any = layout.decode(job.raw)
    except ValueError:
        payload = None
    return logs.describe_job(logs.job_fields(job.queue, payload))


def work(queues: Iterable[str], **options: Any) -> None:
    """Shortcut: ``resque.worker.work(["high", "low"], fork=False)``."""
    Worker(list(queues), **options).work()
