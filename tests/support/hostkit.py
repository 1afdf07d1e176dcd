"""Several hosts on one Redis, for real, on one Linux machine: the multi-host harness.

Each host is a Linux network namespace with its own host name, process ids and ``/proc``
(UTS, PID and mount namespaces, held by a ``sleep`` that is the host's pid 1), joined by a
veth pair to a bridge in one more namespace where redis-server listens. The subnet
(``SUBNET``.0/24) exists only inside those namespaces: the machine itself has no address in
it and no route to it, so nothing a test sends can leave them. The test process talks to
that Redis through its unix socket.

A host vanishes as a machine does when its power goes (``Network.vanish``): its link is
deleted first, so nothing it sends afterwards gets out, then every process in it is
SIGKILLed. No connection closes cleanly: Redis keeps its half of each one until TCP
keepalive gives up.

Everything a run makes is removed at close (the fixtures close in ``finally``), and a new run
first removes what a run whose process died left behind: namespaces are named
``rqh<pid>-...`` after the process that made them. Needs root (``CAP_SYS_ADMIN``) and
iproute2, util-linux's ``unshare`` and ``nsenter``; ``require_hosts`` skips a test without them
(fails with ``RESQUE_REQUIRE_HOSTS=1``, which ``.ci/run`` sets once it has installed them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
import redis

from resque.embedded import find_redis_server
from support.workerkit import APPS

TESTS = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SUBNET = "10.213.0"  # .1 is Redis; host N is .(10 + N)
REDIS_PORT = 6379
PREFIX = "rqh"  # namespace names: rqh<pid of the run>-redis, rqh<pid>-<host>
TOOLS = ("ip", "unshare", "nsenter")


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@cache
def unavailable() -> str | None:
    """None when namespaces can be made here, else why not."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install iproute2 util-linux)"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    probe = f"{PREFIX}{os.getpid()}-probe"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"ip netns add failed: {done.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def require_hosts() -> None:
    """Skip the test where network namespaces cannot be made (fail if they must be)."""
    reason = unavailable()
    if reason and os.environ.get("RESQUE_REQUIRE_HOSTS") == "1":
        pytest.fail(f"RESQUE_REQUIRE_HOSTS=1 but {reason}", pytrace=False)
    if reason:
        pytest.skip(reason)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace(netns: str, timeout: float = 10.0) -> None:
    """SIGKILL every process in ``netns`` until none is left (a dying parent may fork)."""
    deadline = time.monotonic() + timeout
    while pids := [int(p) for p in _ip("netns", "pids", netns, check=False).split()]:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} of {netns} survive SIGKILL")
        time.sleep(0.02)


def sweep_leftovers() -> list[str]:
    """Remove the namespaces of runs whose process has died; returns their names."""
    removed = []
    for line in _ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.strip() else ""
        match = re.fullmatch(rf"{PREFIX}(\d+)-.+", name)
        if match and not _pid_alive(int(match.group(1))):
            _kill_namespace(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


@dataclass
class HostProcess:
    """A process started in a host (``nsenter`` and, under it, the command)."""

    popen: subprocess.Popen[bytes]
    log: Path
    host: Host

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        """Signal the command (``nsenter`` forwards nothing: it only waits for it)."""
        children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        try:
            pids = [int(pid) for pid in children.read_text().split()]
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


@dataclass
class Host:
    """One host: its namespace, host name, address, link and processes."""

    name: str
    netns: str
    address: str
    link: str  # this host's end of the veth pair in the Redis namespace: cut to vanish
    init: subprocess.Popen[bytes] | None = None
    init_pid: int = 0  # its pid 1, seen from the machine: what nsenter joins
    processes: list[HostProcess] = field(default_factory=list)
    vanished: bool = False


class Network:
    """Redis in one namespace and ``hosts`` hosts around it; ``close`` removes everything."""

    def __init__(self, hosts: int, directory: Path, redis_args: Sequence[str] = ()) -> None:
        self.directory = directory
        self.tag = f"{PREFIX}{os.getpid()}"
        self.redis_ns = f"{self.tag}-redis"
        self.hosts = [Host(f"host{n}", f"{self.tag}-host{n}", f"{SUBNET}.{10 + n}",
                           f"rqhl{n}") for n in range(1, hosts + 1)]
        self.socket = str(directory / "redis.sock")
        self.redis_url = f"redis://{SUBNET}.1:{REDIS_PORT}/0"  # as the hosts reach it
        self.redis_args = list(redis_args)
        self.redis_process: subprocess.Popen[bytes] | None = None
        self.made: list[str] = []
        self._spawned = 0

    def __enter__(self) -> Network:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- making it ------------------------------------------------------------------------

    def start(self) -> Network:
        sweep_leftovers()
        self._namespace(self.redis_ns)
        ns = ("-n", self.redis_ns)
        _ip(*ns, "link", "set", "lo", "up")
        _ip(*ns, "link", "add", "rqhbr", "type", "bridge")
        _ip(*ns, "addr", "add", f"{SUBNET}.1/24", "dev", "rqhbr")
        _ip(*ns, "link", "set", "rqhbr", "up")
        self._start_redis()
        for host in self.hosts:
            self._add_host(host)
        for host in self.hosts:
            self._wait_reachable(host)
        return self

    def _namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self.made.append(name)

    def _add_host(self, host: Host) -> None:
        self._namespace(host.netns)
        _ip("link", "add", "eth0", "netns", host.netns, "type", "veth",
            "peer", "name", host.link, "netns", self.redis_ns)
        _ip("-n", self.redis_ns, "link", "set", host.link, "master", "rqhbr", "up")
        _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.netns, "link", "set", "eth0", "up")
        _ip("-n", host.netns, "link", "set", "lo", "up")
        # The host's pid 1: its own host name, process ids and /proc, for all it runs.
        host.init = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "unshare", "--uts", "--pid", "--fork",
             "--mount-proc", "sh", "-c", f"hostname {host.name} && exec sleep infinity"],
            stdin=subprocess.DEVNULL, start_new_session=True)
        children = Path(f"/proc/{host.init.pid}/task/{host.init.pid}/children")
        deadline = time.monotonic() + 10
        while not host.init_pid:
            text = children.read_text().split() if children.exists() else []
            if text and self._hostname_of(int(text[0])) == host.name:
                host.init_pid = int(text[0])
            elif time.monotonic() > deadline or host.init.poll() is not None:
                raise RuntimeError(f"{host.name} did not start its pid 1")
            else:
                time.sleep(0.01)

    @staticmethod
    def _hostname_of(pid: int) -> str:
        done = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"],
                              capture_output=True, text=True)
        return done.stdout.strip()

    def _start_redis(self) -> None:
        data = self.directory / "redis"
        data.mkdir(parents=True, exist_ok=True)
        self.redis_process = subprocess.Popen(
            ["ip", "netns", "exec", self.redis_ns, find_redis_server(),
             "--bind", f"{SUBNET}.1", "--port", str(REDIS_PORT), "--protected-mode", "no",
             "--unixsocket", self.socket, "--unixsocketperm", "700", "--save", "",
             "--dir", str(data), "--logfile", str(data / "redis.log"), *self.redis_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        client = self.client()
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                return
            except (redis.ConnectionError, FileNotFoundError):
                if self.redis_process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start in its namespace:\n"
                                       + self.redis_log()) from None
                time.sleep(0.02)

    def _wait_reachable(self, host: Host) -> None:
        """Each host reaches Redis over its link (the bridge forwards at once; checked)."""
        probe = ("import redis, sys; redis.Redis.from_url(sys.argv[1], "
                 "socket_connect_timeout=1).ping()")
        deadline = time.monotonic() + 15
        while True:
            process = self.spawn(host, "probe", [PYTHON, "-c", probe, self.redis_url])
            if process.popen.wait(30) == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{host.name} cannot reach Redis:\n{process.output()}")
            time.sleep(0.1)

    # --- using it ---------------------------------------------------------------------------

    def client(self) -> redis.Redis:
        """A client for the test process itself (the unix socket: no route needed)."""
        return redis.Redis(unix_socket_path=self.socket)

    def redis_log(self) -> str:
        path = self.directory / "redis" / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RESQUE_", "QUEUE"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APPS), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["HOSTAPP_REDIS"] = self.redis_url
        env.update(extra or {})
        return env

    def spawn(self, host: Host, name: str, command: Sequence[str],
              env: dict[str, str] | None = None) -> HostProcess:
        """Run ``command`` in ``host`` (its network, host name, pids and /proc)."""
        if host.vanished:
            raise RuntimeError(f"{host.name} has vanished")
        self._spawned += 1
        log = self.directory / f"{host.name}-{name}-{self._spawned}.log"
        with open(log, "wb") as sink:
            popen = subprocess.Popen(
                ["nsenter", "-t", str(host.init_pid), "-n", "-u", "-p", "-m",
                 f"--wd={self.directory}", *command],
                env=self.env(env), stdin=subprocess.DEVNULL, stdout=sink,
                stderr=subprocess.STDOUT, start_new_session=True)
        process = HostProcess(popen, log, host)
        host.processes.append(process)
        return process

    def worker(self, host: Host, queues: str, *args: str,
               env: dict[str, str] | None = None) -> HostProcess:
        """``resque work --app hostapp -q QUEUES ARGS`` in ``host``."""
        return self.spawn(host, "worker", [
            PYTHON, "-m", "resque", "work", "--app", "hostapp", "-q", queues,
            "--redis", self.redis_url, *args], env)

    def vanish(self, host: Host) -> None:
        """The host is gone: its link cut, then every process in it SIGKILLed."""
        _ip("-n", self.redis_ns, "link", "del", host.link)
        _kill_namespace(host.netns)
        host.vanished = True
        self._reap(host)

    def _reap(self, host: Host) -> None:
        for process in host.processes:
            if process.popen.poll() is None:
                process.popen.kill()
            process.popen.wait(10)
        if host.init is not None and host.init.poll() is None:
            host.init.kill()
        if host.init is not None:
            host.init.wait(10)

    def close(self) -> None:
        """Kill everything the run started and delete every namespace it made."""
        for name in reversed(self.made):
            _kill_namespace(name)
        for host in self.hosts:
            self._reap(host)
        if self.redis_process is not None:
            self.redis_process.wait(10)
        for name in reversed(self.made):
            _ip("netns", "del", name, check=False)
        self.made.clear()
