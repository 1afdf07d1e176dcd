"""A child process per job, as Ruby's worker does (``fork=True``, the default).

The child comes from the fork server (``forkserver.py``) when there is one: a small process
that loads only the job code, so each fork is cheaper. Without one (it could not start, it
died, it cannot resolve this job, or the worker has ``after_fork`` hooks or a failure backend
object only it holds) the worker forks the child itself. Either way the worker knows the
child's pid, so signals go straight to it, and turns its exit status and report into an
acknowledgement: a child that died is a ``DirtyExit``, a child stopped by a shutdown is
requeued.
"""

from __future__ import annotations

import gc
import logging
import os
import select
import signal
import time
from typing import Any

from resque import jobs, layout, performing
from resque.errors import DirtyExit
from resque.execution import child
from resque.execution.base import Executor, Host
from resque.execution.forkserver import ForkServer, ForkServerUnavailable
from resque.hooks import run_hooks
from resque.policies import retry
from resque.policies import timeout as timeouts
from resque.store import ACK_DIRTY, ACK_FAILED, ACK_OK, ACK_REQUEUE, Ack, Reserved

log = logging.getLogger("resque.worker")


class ForkExecutor(Executor):
    """Forks a child for each job and waits for it."""

    mode = "fork"

    def describe(self) -> str:
        return "fork per job, from a fork server" if self._server else "fork per job"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self._server: ForkServer | None = None
        self._child: int | None = None
        self._stopping_child = False  # we signalled the child: its death is no DirtyExit
        self._timed_out: float | None = None  # the limit the running child ran past
        self._limit: float | None = None  # the running job's timeout (perform_job_by)

    def start(self) -> None:
        child.load_prctl()
        host, settings = self.host, self.host.settings
        # This worker's own hooks and a backend object exist only in this process.
        if (not settings.fork_server or host.hooks["after_fork"]
                or not isinstance(settings.failure_backend, (str, type(None)))):
            return
        modules = {*settings.preload, *job_modules(host.resque.registry)}
        failure = settings.failure_backend or os.environ.get("FAILURE_BACKEND") or "redis"
        try:
            self._server = ForkServer.start(
                sorted(modules), host.resque.allowed_modules, host.id, failure,
                host.title(f"Fork server of {os.getpid()}"),
            )
        except (ForkServerUnavailable, OSError) as exc:
            log.warning("no fork server (%s): forking jobs from the worker itself", exc)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def perform_job(self, job: Reserved, payload: dict[str, Any], target: Any) -> Ack:
        run_hooks("before_fork", self.host.hooks["before_fork"], payload)
        title = self.host.title(
            layout.title_processing(job.queue, int(time.time()), payload["class"]))
        try:
            pid, status, report = self._fork(job, payload, target, title)
        finally:
            self._child = None
            signal.setitimer(signal.ITIMER_REAL, 0)
        stopped_by_us, self._stopping_child = self._stopping_child, False
        timed_out, self._timed_out = self._timed_out, None
        if timed_out is not None:  # policies: whatever the child said, it ran out of time
            return self._timed_out_ack(job, payload, target, timed_out, report)
        return self._outcome(job, payload, target, (pid, status),
                             report.removeprefix(child.REPORT_DONE), stopped_by_us)

    def perform_job_by(self, job: Reserved, payload: dict[str, Any], target: Any,
                       limit: float) -> Ack:
        """A child read with a deadline, then TERMed and KILLed (``_read_by_deadline``)."""
        self._limit = limit
        try:
            return self.perform_job(job, payload, target)
        finally:
            self._limit = None

    def _timed_out_ack(self, job: Reserved, payload: dict[str, Any], target: Any,
                       limit: float, report: bytes) -> Ack:
        """A child the worker ended at its deadline: a ``JobTimeout`` failure, with the
        job's ``on_failure`` hooks run here when the child died before running them."""
        error = timeouts.expired(limit)
        if not report.startswith(child.REPORT_DONE):
            performing.run_failure_hooks(target, error, payload["args"])
        return self.failure(ACK_FAILED, job, payload, error)

    def _outcome(self, job: Reserved, payload: dict[str, Any], target: Any,
                 ended: tuple[int, int], report: bytes, stopped_by_us: bool) -> Ack:
        """How the child ended (``(pid, wait status)`` and its report), as an ``Ack``."""
        pid, status = ended
        interrupted = self.host.stop.interrupt
        if os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0:
            if stopped_by_us and interrupted:
                return Ack(ACK_REQUEUE)
            error = DirtyExit(_exit_message(pid, status))
            performing.run_failure_hooks(target, error, payload["args"])
            return self.failure(ACK_DIRTY, job, payload, error)
        if not report:
            return Ack(ACK_OK)
        if interrupted and report.startswith(child.REPORT_TERMINATED):
            return Ack(ACK_REQUEUE)
        attempt = retry.current()
        if attempt is not None and report.startswith(child.REPORT_RETRY):
            attempt.verdict = retry.RETRY  # the child's ruling, which only it could make
        return Ack(ACK_FAILED, report[1:].decode("utf-8", "surrogateescape"), job.queue)

    def _fork(self, job: Reserved, payload: dict[str, Any], target: Any,
              title: str) -> tuple[int, int, bytes]:
        """``(pid, wait status, report)`` of a child that performed the job."""
        server = self._server
        # A tracked job writes its status from the child: only a child forked here inherits
        # the worker's Redis client (the fork server's children load no redis-py). A job with
        # a policy: only a child forked here inherits its attempt (``retry.current``), and
        # only one forked here is read with a deadline (the server reaps its own children).
        if (server is not None and layout.JOB_TRACK not in payload
                and retry.current() is None and self._limit is None):
            try:
                return server.run(job.queue, job.raw, title, self._child_started)
            except ForkServerUnavailable as exc:
                if self._child is not None:  # it died mid-job, and its child with it
                    self._drop_server(f"it stopped during a job ({exc})")
                    return self._child, signal.SIGKILL, b""
                if not server.alive():
                    self._drop_server(str(exc))
        return self._fork_here(job, payload, target, title)

    def _fork_here(self, job: Reserved, payload: dict[str, Any], target: Any,
                   title: str) -> tuple[int, int, bytes]:
        performing.warm(target)
        read_end, write_end = os.pipe()
        gc.freeze()  # keep the parent's objects out of the child's GC: pages stay shared
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            child.child_main(
                write_end, queue=job.queue, raw=job.raw, payload=payload, target=target,
                worker=self.host.id, title=title, failure=self.host.failure,
                after_fork=self.host.hooks["after_fork"], statuses=self.statuses(payload),
            )
        gc.unfreeze()
        os.close(write_end)
        self._child_started(pid)
        try:
            limit = self._limit
            report = (child.read_all(read_end) if limit is None
                      else self._read_by_deadline(read_end, pid, limit))
            _, status = os.waitpid(pid, 0)
        finally:
            os.close(read_end)
        return pid, status, report

    def _read_by_deadline(self, fd: int, pid: int, limit: float) -> bytes:
        """The child's report, ending the child at its deadline: TERM (``TermException``
        in the job), then KILL after ``term_timeout``. Only this process reaps the child, so
        its pid cannot be another's while we signal it."""
        chunks: list[bytes] = []
        deadline, signum = time.monotonic() + limit, signal.SIGTERM
        while True:
            left = deadline - time.monotonic()
            if left > 0 and select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                continue
            if left > 0:
                continue  # select woke for a signal: wait out the rest
            if self._timed_out is None:
                self._timed_out = limit
                log.warning("child pid %s ran past its job's timeout of %g s: ending it", pid,
                            limit)
            self._signal_child(signum)
            deadline = time.monotonic() + (max(self.host.settings.term_timeout, 0.001)
                                           if signum == signal.SIGTERM else 3600.0)
            signum = signal.SIGKILL

    def _child_started(self, pid: int) -> None:
        self._child = pid
        self.host.set_title(layout.title_forked(pid, int(time.time())))
        if self.host.stop.interrupt:  # a stop that arrived while the child was being forked
            self.stop_job(force=False)

    def _drop_server(self, why: str) -> None:
        log.warning("fork server gone (%s): forking jobs from the worker itself", why)
        self.close()

    def stop_job(self, force: bool) -> None:
        if not self._child:
            return
        if force:
            self._signal_child(signal.SIGKILL)
            return
        if self.host.settings.term_child:
            self._signal_child(signal.SIGTERM)
        signal.setitimer(signal.ITIMER_REAL, max(self.host.settings.term_timeout, 0.001))

    def kill_child(self) -> None:
        if not self._child:
            return
        settings = self.host.settings
        log.info("killing child %s", self._child)
        self._signal_child(signal.SIGTERM if settings.term_child else signal.SIGKILL)
        if settings.term_child:  # it gets term_timeout to end, then KILL (ALRM)
            signal.setitimer(signal.ITIMER_REAL, max(settings.term_timeout, 0.001))

    def _signal_child(self, signum: int) -> None:
        pid = self._child
        if pid:
            self._stopping_child = True
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def _exit_message(pid: int, status: int) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return layout.child_signal_message(pid, signal.Signals(signum).name, signum)
    return f"Child process exited with status {os.WEXITSTATUS(status)}"


def job_modules(registry: jobs.Registry) -> set[str]:
    """Modules that define registered jobs: what the fork server imports."""
    found = set()
    for name in registry.names():
        target = registry.get(name)
        module = getattr(getattr(target, "func", target), "__module__", None)
        if module and module != "__main__":
            found.add(module)
    return found
