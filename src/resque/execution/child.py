"""The forked child's side of a job, shared by the direct fork and the fork server.

Nothing here imports redis-py: the fork server (``execution/forkserver.py``) is a small process
that loads only the job code, so forking it is cheap. The child performs the job, reports a
failure as a finished failure record through a pipe, and leaves with ``os._exit``. It dies
with its parent (Linux), so a job never runs on while a pruner requeues it elsewhere.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import traceback
from types import FrameType
from typing import Any

from resque import current, logs, tracing
from resque.errors import TermException
from resque.failure import Failure, FailureBackend, save_quietly
from resque.failure.records import from_exception
from resque.hooks import Hook, run_hooks
from resque.policies import retry

# A child reports through its pipe, then closes it before it exits: REPORT_DONE, then
# nothing (success) or a marker byte and a failure record. A pipe closed without REPORT_DONE
# means the child died first: only its exit status tells how.
REPORT_DONE = b"D"
REPORT_FAILED = b"F"
REPORT_TERMINATED = b"T"  # the job was stopped with TermException
REPORT_RETRY = b"R"  # it failed, and its retry policy plans another attempt


def child_main(
    report_fd: int,
    *,
    queue: str,
    raw: bytes,
    payload: dict[str, Any],
    target: Any,
    worker: str,
    title: str,
    failure: FailureBackend,
    after_fork: list[Hook],
    result_fd: int | None = None,
    statuses: Any = None,
) -> None:
    """In the forked child: perform, report a failure through the pipe, ``os._exit``.

    With ``result_fd`` (a fork server's child) the result line also goes straight to the
    worker on that socket, before ``REPORT_DONE`` tells the server it was delivered.
    ``statuses``: where a tracked job records its status (the worker's client, inherited:
    only a directly forked child has one)."""
    code = 0
    try:
        logs.set_job(queue, payload)  # its lines (hooks, the job's own) are about this job
        _become_child(title)
        run_hooks("after_fork", after_fork, payload)
        report = _perform(queue, raw, payload, target, worker, failure, statuses)
        _flush_output()  # before the report: the worker moves on
        if result_fd is not None:
            line = {"status": 0, "report": (REPORT_DONE + report).decode(
                "utf-8", "surrogateescape")}
            write_all(result_fd, json.dumps(line).encode("utf-8", "surrogateescape") + b"\n")
        write_all(report_fd, REPORT_DONE + report)
        os.close(report_fd)  # the worker reads the end of the report now, not at our exit
    except BaseException:  # noqa: BLE001 - never let the child return into the parent loop
        code = 1
        traceback.print_exc()
    finally:
        if tracing.tracer is not None:  # os._exit skips the exporters' exit handlers
            tracing.tracer.flush()
        _flush_output()
        os._exit(code)


def _become_child(title: str) -> None:
    """Signals as a job's child has them: the worker handles all but TERM, which stops the
    job with ``TermException``."""
    die_with_parent()
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_term)
    signal.signal(signal.SIGCONT, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    import setproctitle

    setproctitle.setproctitle(title)


def _perform(queue: str, raw: bytes, payload: dict[str, Any], target: Any, worker: str,
             failure: FailureBackend, statuses: Any) -> bytes:
    """Run the job; the report: empty, or a marker and the failure record."""
    try:
        current.execute(target, payload, queue, worker, statuses)
    except BaseException as exc:  # noqa: BLE001 - the child reports everything, then exits
        record = from_exception(payload, exc, worker, queue, raw)
        retrying = retry.ruling(exc, payload) == retry.RETRY  # here: only we hold exc
        if failure.saves and retry.reported(retrying):  # a non-Redis backend: the live exc
            save_quietly(failure, Failure(record, queue, payload, exc))
        marker = (REPORT_TERMINATED if isinstance(exc, TermException)
                  else REPORT_RETRY if retrying else REPORT_FAILED)
        return marker + record.encode("utf-8", "surrogateescape")
    return b""


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream must not stop the report
            pass


def _raise_term(signum: int, frame: FrameType | None) -> None:
    raise TermException("SIGTERM")


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_PR_SET_PDEATHSIG = 1
_prctl: Any = None


def load_prctl() -> None:
    """Open libc once, in the parent, so that children need not."""
    global _prctl
    if _prctl is None and sys.platform.startswith("linux"):
        try:
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            _prctl = False


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies, so a job never runs orphaned
    while a pruner requeues it elsewhere."""
    load_prctl()
    if _prctl:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
