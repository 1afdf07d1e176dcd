"""Redis going away, and coming back: workers, admin verbs and the dashboard live through it.

A worker retries with backoff and jitter, logs one line when Redis goes and one when it
returns (whichever of its threads sees it first), and resumes without a restart; its
subscription comes back too. A command whose reply was lost is never sent again by the
client library, and the worker's step, should it reach Redis twice anyway (a client-side
timeout, then the first copy executed late), acts once. Admin verbs wait for Redis up to
``RESQUE_REDIS_WAIT`` seconds, then fail with the address and no password. The dashboard
answers 503 while Redis is away and serves pages again when it returns.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import workerapp  # noqa: F401 - registers the jobs for the in-process tests
from support.faultkit import ReplyDropper, freeze, own_redis, stop, thaw
from support.workerkit import WorkerProcess, Workers, failures, notes, wait_for

from resque import Resque, Worker, layout
from resque.embedded import EmbeddedRedis
from resque.errors import RedisUnavailable

SECRET = "pw-Zq81-never-shown"


class SecretRedis(EmbeddedRedis):
    """A Redis with ``requirepass``; its URL carries the password."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, persistent=True, extra_args=["--requirepass", SECRET])

    @property
    def url(self) -> str:
        return f"redis://:{SECRET}@127.0.0.1:{self.port}/0"


def says(worker: WorkerProcess, text: str) -> Callable[[], bool]:
    """For wait_for: the worker's output holds ``text``."""
    return lambda: text in worker.output()


def has_noted(r: redis.Redis, note: str) -> Callable[[], bool]:
    """For wait_for: a workerapp job logged ``note``."""
    return lambda: note in notes(r)


# --- a step whose reply is lost acts once (the script itself: test_scripts_worker.py) ----------


def test_the_client_never_sends_again_a_command_whose_reply_was_lost(
    r: redis.Redis, redis_server: EmbeddedRedis
) -> None:
    proxy = ReplyDropper(redis_server.port)
    try:
        for spec in (f"127.0.0.1:{proxy.port}", f"redis://127.0.0.1:{proxy.port}/0"):
            r.delete("counter", "resque:queue:q")
            client = Resque(spec)
            client.enqueue_to("warm", "Record", "loads the enqueue script")
            proxy.arm(b"INCR")
            with pytest.raises(redis.ConnectionError):
                client.redis.incr("counter")
            assert r.get("counter") == b"1"  # ran once; not retried behind our back
            proxy.arm(b"only-once")
            with pytest.raises(RedisUnavailable, match=f"127.0.0.1:{proxy.port}"):
                client.enqueue_to("q", "Record", "only-once")
            assert r.llen("resque:queue:q") == 1
            client.redis.close()
    finally:
        proxy.close()


def test_a_worker_whose_step_reply_is_lost_acknowledges_each_job_once(
    r: redis.Redis, redis_server: EmbeddedRedis, in_process: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = ReplyDropper(redis_server.port)
    client = Resque(r)
    try:
        client.enqueue_many("Record", ([f"j{i}"] for i in range(20)), queue="q")
        client.enqueue_to("q", "Fail", "marker-in-the-failure-record")
        client.enqueue_many("Record", ([f"k{i}"] for i in range(20)), queue="q")
        # The step that acknowledges the failing job carries its failure record: lose its reply.
        proxy.arm(b"marker-in-the-failure-record", skip=0)
        Worker(["q"], redis=f"127.0.0.1:{proxy.port}", fork=False, interval=0).work()
        assert proxy.dropped == 1
    finally:
        proxy.close()
    ran = Counter(notes(r))
    assert ran == {f"{p}{i}": 1 for p in "jk" for i in range(20)}
    assert r.get("resque:stat:processed") == b"41"
    assert r.get("resque:stat:failed") == b"1"
    assert len(failures(r)) == 1
    assert not r.keys("resque:inflight:*")
    assert caplog.text.count("Redis is unreachable") == 1


def test_a_frozen_redis_times_out_and_no_job_is_lost_or_run_twice(
    r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    with own_redis(tmp_path / "redis") as server:
        Resque(server.url).enqueue_many("Sleep", ([0.15, f"j{i}"] for i in range(16)),
                                        queue="low")
        farm = Workers(f"{server.url}?socket_timeout=0.5", tmp_path)
        try:
            for mode in ("--fork", "--no-fork"):
                farm.start("low", mode, env={"WORKERAPP_REDIS": redis_url})
            wait_for(lambda: sum(n.startswith("end:") for n in notes(r)) >= 3, timeout=15)
            freeze(server)  # connections are accepted, nothing answers
            time.sleep(2.5)
            thaw(server)  # the requests sent meanwhile now run, late
            wait_for(lambda: len({n for n in notes(r) if n.startswith("end:")}) == 16,
                     timeout=30, what="every job")
            starts = Counter(n for n in notes(r) if n.startswith("start:"))
            assert starts == {f"start:j{i}": 1 for i in range(16)}
            back = server.client()
            wait_for(lambda: back.get("resque:stat:processed") == b"16", timeout=10)
            assert not [k for k in back.keys("resque:inflight:*") if back.llen(k)]
            for worker in farm.started:
                assert worker.alive()
                assert worker.output().count("Redis is unreachable") == 1, worker.output()
        finally:
            farm.cleanup()


# --- a long outage: workers, a worker starting meanwhile, admin verbs, the dashboard ---------


def test_everything_waits_out_a_long_outage_and_resumes_without_a_restart(
    r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from resque.web import create_app

    server = SecretRedis(tmp_path / "redis").start()
    farm = Workers(server.url, tmp_path)
    env = {"WORKERAPP_REDIS": redis_url, "RESQUE_HEARTBEAT_INTERVAL": "0.3",
           "RESQUE_PRUNE_INTERVAL": "1"}
    web = TestClient(create_app(server.url), base_url="http://127.0.0.1")
    try:
        running = [farm.start("low", mode, env=env, interval=60) for mode in ("--fork",
                                                                               "--no-fork")]
        queue = server.client()
        wait_for(lambda: queue.scard("resque:workers") == 2, timeout=15)
        assert web.get("/").status_code == 200

        stop(server)
        outage_started = time.monotonic()
        waiting_verb = subprocess.Popen(
            [sys.executable, "-m", "resque", "queues", "--redis", server.url],
            env={**os.environ, "RESQUE_REDIS_WAIT": "40"}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        impatient = subprocess.run(
            [sys.executable, "-m", "resque", "queues", "--redis", server.url],
            env={**os.environ, "RESQUE_REDIS_WAIT": "0.5"}, capture_output=True, text=True,
            timeout=30,
        )
        assert impatient.returncode == 1
        assert f"cannot reach Redis at redis://127.0.0.1:{server.port}/0" in impatient.stderr
        assert "Traceback" not in impatient.stderr
        late = farm.start("low", "--no-fork", env=env, interval=60)  # starts during the outage
        down = web.get("/")
        assert down.status_code == 503 and "reach Redis" in down.text
        assert SECRET not in down.text
        time.sleep(max(0.0, 8 - (time.monotonic() - outage_started)))  # longer than the cap
        server.start()

        verb_out, verb_err = waiting_verb.communicate(timeout=40)
        assert waiting_verb.returncode == 0, verb_err
        assert verb_err.count("Redis is unreachable") == 1 and "Redis is back" in verb_err
        assert web.get("/").status_code == 200  # the same app, no restart
        wait_for(lambda: queue.scard("resque:workers") == 3, timeout=20,
                 what="all three workers registered")
        for worker in [*running, late]:
            wait_for(says(worker, "Redis is back"), timeout=15,
                     what=f"{worker.id} to see Redis back")

        client = Resque(server.url)
        for i in range(2):  # the second one proves the wake-up subscription is back
            enqueued = time.monotonic()
            client.enqueue_to("low", "Record", f"after{i}")
            wait_for(has_noted(r, f"after{i}"), timeout=15)
            if i:
                assert time.monotonic() - enqueued < 3, "woken by the poll, not the wake-up"

        for worker in [*running, late]:
            log = worker.output()
            assert worker.alive(), log
            assert log.count("Redis is unreachable") == 1, log  # one line per outage...
            assert log.count("Redis is back") == 1, log  # ...and one when it ends
            assert "heartbeat failed" not in log and "Traceback" not in log, log
            assert SECRET not in log
    finally:
        farm.cleanup()
        web.close()
        server.stop()


# --- a worker that reuses a dead worker's id ---------------------------------------------------


def test_jobs_left_in_flight_under_a_reused_worker_id_run_once_and_nothing_is_mis_acked(
    r: redis.Redis, in_process: None
) -> None:
    keys = layout.Keys()
    worker = Worker(["q"], redis=r, fork=False, interval=0, hostname="box")
    left = layout.encode_job("Record", ["left-in-flight"])
    r.rpush(keys.inflight(worker.id), layout.encode(["q", left, "7:1"]))  # a dead predecessor
    r.set(keys.worker(worker.id), layout.working_on("q", left))
    Resque(r).enqueue_many("Record", ([f"j{i}"] for i in range(5)), queue="q")
    worker.work()
    assert Counter(notes(r)) == {"left-in-flight": 1, **{f"j{i}": 1 for i in range(5)}}
    assert r.get(keys.stat("processed")) == b"6"
    assert not r.exists(keys.inflight(worker.id))


def test_the_dashboard_logs_one_line_per_outage_not_one_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from resque.embedded import free_port
    from resque.web import create_app

    with TestClient(create_app(f"redis://127.0.0.1:{free_port()}/0"),
                    base_url="http://127.0.0.1") as web:
        for _ in range(5):
            assert web.get("/live.json").status_code == 503
    assert caplog.text.count("127.0.0.1") <= 2, caplog.text
