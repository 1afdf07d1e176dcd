"""A small process that forks the per-job children for a forking worker.

Why: forking costs in proportion to the memory the forking process maps, and a worker maps
redis-py (about 30 MB here: ``import redis`` loads asyncio too). The fork server is a separate
interpreter that loads only the job code (``import resque`` does not load redis-py), so each
fork is about twice as cheap. Each job still runs in a fresh child process, with every
guarantee of the direct fork: the worker knows the child's pid (signals go straight to it),
sees its exit status, and gets its failure report.

Protocol, one JSON line each way per message over a socket pair:
worker -> server ``{"queue", "raw", "title"}`` (the job exactly as queued);
server -> worker ``{"pid": N}`` when the child starts (or ``{"error": "..."}`` when the job
cannot be resolved there, and the worker forks it directly), then
``{"status": wait_status, "report": "..."}`` when it is done: written by the child itself
when it finishes, or by the server with the exit status when the child died first.
The server exits when the worker closes its end, and dies with the worker (Linux).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from resque import jobs, layout, logs, performing
from resque.execution import child


class ForkServerUnavailable(Exception):
    """The server cannot run this job (it could not resolve it, or it is gone)."""


class ForkServer:
    """The worker's handle on its fork server."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.reader = sock.makefile("rb")

    @classmethod
    def start(
        cls,
        modules: Sequence[str],
        allowed_modules: Sequence[str],
        worker: str,
        failure_backend: str,
        title: str,
        log_setup: logs.LogSetup | None = None,
    ) -> ForkServer:
        ours, theirs = socket.socketpair()
        config = json.dumps({
            "modules": list(modules), "allowed": list(allowed_modules), "worker": worker,
            "failure": failure_backend, "title": title, "path": sys.path,
            "logging": (log_setup or logs.current()).to_dict(),
        })
        process = subprocess.Popen(
            [sys.executable, "-c", "from resque.execution.forkserver import serve; serve()",
             str(theirs.fileno()), config],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        server = cls(process, ours)
        ready = server._receive()
        if not ready.get("ready"):
            server.close()
            raise ForkServerUnavailable(ready.get("error", "the fork server did not start"))
        return server

    def run(self, queue: str, raw: bytes, title: str,
            on_start: Callable[[int], None]) -> tuple[int, int, bytes]:
        """Perform one job in a child of the server: ``(pid, wait status, report)``."""
        self._send({"queue": queue, "raw": raw.decode("utf-8", "surrogateescape"), "title": title})
        started = self._receive()
        if "error" in started:
            raise ForkServerUnavailable(started["error"])
        pid = int(started["pid"])
        on_start(pid)
        finished = self._receive()
        report = finished["report"].encode("utf-8", "surrogateescape")
        return pid, int(finished["status"]), report

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        finally:
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(message).encode("utf-8", "surrogateescape") + b"\n")

    def _receive(self) -> dict[str, Any]:
        line = self.reader.readline()
        if not line:
            raise ForkServerUnavailable("the fork server has gone away")
        message: dict[str, Any] = json.loads(line)
        return message


def serve() -> None:
    """The server's main loop (run as ``python -c ... serve()`` by ``ForkServer.start``)."""
    fd, config = int(sys.argv[1]), json.loads(sys.argv[2])
    sys.path[:] = config["path"]
    logs.apply(logs.LogSetup(**config["logging"]))  # its children log as the worker does
    sock = socket.socket(fileno=fd)
    reader = sock.makefile("rb")
    child.die_with_parent()
    # The worker handles every signal; the server only ends when the worker closes the socket.
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
                   signal.SIGUSR2, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)

    def send(message: dict[str, Any]) -> None:
        sock.sendall(json.dumps(message).encode("utf-8", "surrogateescape") + b"\n")

    try:
        import setproctitle

        from resque.failure import backend_from_name

        setproctitle.setproctitle(config["title"])
        for module in config["modules"]:
            importlib.import_module(module)
        failure = backend_from_name(config["failure"])
    except Exception as exc:  # noqa: BLE001 - report why, then let the worker fork itself
        send({"error": f"{type(exc).__name__}: {exc}"})
        return
    send({"ready": True})
    gc.freeze()
    try:
        _serve_jobs(sock, reader, send, config, failure)
    except OSError:
        pass  # the worker went away (killed): our children die with us, nothing to report


def _serve_jobs(sock: socket.socket, reader: Any, send: Callable[[dict[str, Any]], None],
                config: dict[str, Any], failure: Any) -> None:
    spare = _Spare.fork(sock, reader, config, failure)
    while line := reader.readline():
        request = json.loads(line)
        queue = request["queue"]
        raw = request["raw"].encode("utf-8", "surrogateescape")
        try:
            # Resolving here too imports a dotted-path job once, in the server, for all
            # later children; and a job the server cannot resolve is forked by the worker.
            target = jobs.registry.resolve(layout.decode_job(raw, queue)["class"],
                                           config["allowed"])
        except Exception as exc:  # noqa: BLE001 - the worker resolves and reports it itself
            send({"error": f"{type(exc).__name__}: {exc}"})
            continue
        performing.warm(target)
        running = spare
        send({"pid": running.pid})  # before the child can write its own result line
        running.start(line)
        spare = _Spare.fork(sock, reader, config, failure)  # while the job runs
        died = running.finish()
        if died is not None:  # it did not get to report: its exit status says how it ended
            status, report = died
            send({"status": status, "report": report.decode("utf-8", "surrogateescape")})
        _reap()
    spare.abandon()


class _Spare:
    """A child forked before its job is known, so the fork is off the job's path: it waits
    for one job on a pipe, performs it, and exits (still one process per job)."""

    def __init__(self, pid: int, job_fd: int, report_fd: int) -> None:
        self.pid, self.job_fd, self.report_fd = pid, job_fd, report_fd

    @classmethod
    def fork(cls, sock: socket.socket, reader: Any, config: dict[str, Any],
             failure: Any) -> _Spare:
        job_read, job_write = os.pipe()
        report_read, report_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(job_write)
            os.close(report_read)
            reader.close()
            # The child keeps the worker's socket: it writes its own result line there, so
            # the worker hears of the job's end without waiting for this server.
            _spare_main(job_read, report_write, sock.fileno(), config, failure)
        os.close(job_read)
        os.close(report_write)
        return cls(pid, job_write, report_read)

    def start(self, request: bytes) -> None:
        child.write_all(self.job_fd, request)
        os.close(self.job_fd)

    def finish(self) -> tuple[int, bytes] | None:
        """None once the child has sent its result to the worker itself; otherwise (it died
        first) its exit status and whatever it wrote. Reaping waits for ``_reap``."""
        report = child.read_all(self.report_fd)
        os.close(self.report_fd)
        if report.startswith(child.REPORT_DONE):
            _reaped_later.add(self.pid)
            return None
        _, status = os.waitpid(self.pid, 0)
        return status, report

    def abandon(self) -> None:
        os.close(self.job_fd)  # it reads end-of-file, and exits
        os.close(self.report_fd)
        os.waitpid(self.pid, 0)


_reaped_later: set[int] = set()


def _reap() -> None:
    """Collect children that reported and exited (never blocking on one still exiting)."""
    for pid in list(_reaped_later):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _reaped_later.discard(pid)


def _spare_main(
    job_fd: int, report_fd: int, worker_fd: int, config: dict[str, Any], failure: Any
) -> None:
    try:
        line = child.read_all(job_fd)
        os.close(job_fd)
        if not line:
            os._exit(0)  # the server is stopping: no job for this one
        request = json.loads(line)
        queue = request["queue"]
        raw = request["raw"].encode("utf-8", "surrogateescape")
        payload = layout.decode_job(raw, queue)
        target = jobs.registry.resolve(payload["class"], config["allowed"])
    except BaseException:  # noqa: BLE001 - never return into the server's loop
        os._exit(1)
    child.child_main(
        report_fd, queue=queue, payload=payload, target=target, raw=raw,
        worker=config["worker"], title=request["title"], failure=failure, after_fork=[],
        result_fd=worker_fd,
    )
