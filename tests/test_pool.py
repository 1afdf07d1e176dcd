"""``resque pool``: real pool processes supervising real workers on the test redis-server.

Each test starts ``python -m resque pool ... --app workerapp`` in its own session, reads the
workers it started from Redis (``resque:workers``, ids ``host:pid:queues``) and the pool's
children from /proc, and kills whatever is left at the end (workers run in their own process
groups, so they are killed by pid too). Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.faultkit import RedisServer
from support.replies import as_text
from support.workerkit import (
    PYTHON,
    TESTS,
    Workers,
    blocked_opening_a_fifo,
    notes,
    push,
    queued,
    read_fifo,
    title_of,
    wait_for,
)

from resque.pool import (
    PoolConfigError,
    RestartPolicy,
    load_config,
    multiply,
    parse_config,
    parse_inline,
)
from resque.pool.cli import config_loader
from resque.settings import PoolSettings

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")


def children_of(pid: int) -> list[int]:
    """Live (not zombie) child processes of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def registered(r: redis.Redis) -> dict[int, str]:
    """Registered workers as pid -> queues."""
    result = {}
    for raw in r.smembers("resque:workers"):
        _, pid, queues = as_text(raw).split(":", 2)
        result[int(pid)] = queues
    return result


def alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


class PoolProcess:
    def __init__(self, popen: subprocess.Popen[bytes], output: Path) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.output_path = output
        self.seen_workers: set[int] = set()

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def workers(self) -> list[int]:
        pids = children_of(self.pid)
        self.seen_workers.update(pids)
        return pids

    def wait_workers(self, r: redis.Redis, expected: dict[str, int],
                     timeout: float = 15.0) -> dict[int, str]:
        """Wait until the pool's live children are registered with exactly these queue counts."""

        def check() -> dict[int, str] | None:
            children = self.workers()
            mine = {pid: q for pid, q in registered(r).items() if pid in children}
            counts: dict[str, int] = {}
            for queues in mine.values():
                counts[queues] = counts.get(queues, 0) + 1
            return mine if counts == expected and len(children) == len(mine) else None

        return wait_for(check, timeout, f"workers {expected}; output:\n{self.output()}")

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"pool still running after {timeout}s:\n{self.output()}") from None

    def kill(self) -> None:
        pids = set(self.seen_workers)
        if self.popen.poll() is None:
            pids.update(self.workers())
            self.popen.kill()
        self.popen.wait(10)
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def pools(redis_url: str, tmp_path: Path) -> Iterator[list[PoolProcess]]:
    started: list[PoolProcess] = []
    yield started
    for pool in started:
        pool.kill()


def start_pool(pools: list[PoolProcess], redis_url: str, tmp_path: Path, *args: str,
               env: dict[str, str] | None = None) -> PoolProcess:
    environment = Workers(redis_url, tmp_path).env({"RESQUE_TERM_TIMEOUT": "0.2", **(env or {})})
    output = tmp_path / f"pool-{len(pools)}.log"
    command = [PYTHON, "-m", "resque", "pool", "--app", "workerapp", "--redis", redis_url,
               "--interval", "0.2", "-v", *args]
    with open(output, "wb") as sink:
        popen = subprocess.Popen(command, env=environment, cwd=tmp_path,
                                 stdin=subprocess.DEVNULL, stdout=sink,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    pool = PoolProcess(popen, output)
    pools.append(pool)
    return pool


# --- the config -----------------------------------------------------------------------------


def test_a_config_maps_queue_lists_to_counts_and_an_environment_section_overrides() -> None:
    data = {"high, low": 2, "mail": 1, "production": {"mail": 3, "reports": 1}, "test": {"x": 9}}
    assert parse_config(data) == {"high,low": 2, "mail": 1}
    assert parse_config(data, "production") == {"high,low": 2, "mail": 3, "reports": 1}


@pytest.mark.parametrize("bad", [{"high": -1}, {"high": "two"}, {"high": True}, {"hi gh": 1},
                                 {"high,,low": 1}, ["high"], {"prod": {"mail": {"x": 1}}}])
def test_a_bad_config_entry_is_refused_with_its_name(bad: object) -> None:
    with pytest.raises(PoolConfigError):
        parse_config(bad, "prod")


def test_inline_specs_take_a_count_after_the_last_colon_or_json() -> None:
    assert parse_inline(["high,low:2", "mail", '{"reports": 3}', "mail:1"]) == {
        "high,low": 2, "mail": 2, "reports": 3}
    with pytest.raises(PoolConfigError, match="QUEUES"):
        parse_inline(["high:two"])


def test_count_multiplies_every_entry() -> None:
    assert multiply({"high,low": 2, "mail": 1}, 3) == {"high,low": 6, "mail": 3}


def test_config_files_are_yaml_or_json(tmp_path: Path) -> None:
    (tmp_path / "pool.yml").write_text('"high,low": 2\nmail: 1\nproduction:\n  mail: 4\n')
    (tmp_path / "pool.json").write_text('{"high": 1}')
    assert load_config(tmp_path / "pool.yml", "production") == {"high,low": 2, "mail": 4}
    assert load_config(tmp_path / "pool.json") == {"high": 1}
    with pytest.raises(PoolConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yml")


def test_a_worker_that_keeps_dying_young_is_restarted_later_and_later() -> None:
    backoff = RestartPolicy(base=1.0, limit=8.0)
    assert [backoff.delay(n) for n in range(6)] == [0.0, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_the_pool_gives_up_after_that_many_failed_starts_but_never_for_a_clean_exit() -> None:
    policy = RestartPolicy(give_up_after=3)
    cases = [(2, 1), (3, 1), (3, -9), (3, 0)]
    assert [policy.gives_up(crashes, status) for crashes, status in cases] == [
        False, True, True, False]
    assert RestartPolicy(give_up_after=0).gives_up(100, 1) is False


def test_pool_settings_read_resque_pools_variables() -> None:
    settings = PoolSettings.from_env({"RESQUE_POOL_CONFIG": "pool.yml", "RAILS_ENV": "prod",
                                      "RACK_ENV": "staging", "COUNT": "3", "QUEUE": "a, b"})
    assert (settings.config, settings.environment, settings.count, settings.queues) == (
        "pool.yml", "staging", 3, ("a", "b"))
    assert RestartPolicy.from_settings(settings) == RestartPolicy(1.0, 60.0, 5.0)


def test_the_config_file_comes_from_resque_pool_config(tmp_path: Path) -> None:
    (tmp_path / "pool.yml").write_text('"high,low": 2\nproduction:\n  high,low: 3\n')
    settings = PoolSettings.from_env({"RESQUE_POOL_CONFIG": str(tmp_path / "pool.yml"),
                                      "RESQUE_ENV": "production", "COUNT": "2"})
    assert config_loader(settings, ())() == {"high,low": 6}


def test_without_a_file_the_pool_runs_one_worker_on_queues(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert config_loader(PoolSettings.from_env({"QUEUES": "high, low"}), ())() == {"high,low": 1}


def test_minus_c_is_the_workers_concurrency_so_the_pool_config_is_minus_f(
    tmp_path: Path
) -> None:
    done = subprocess.run([PYTHON, "-m", "resque", "pool", "-c", "pool.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "No such option '-c'" in done.stderr


def test_the_pool_without_a_config_says_how_to_give_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("QUEUE", "QUEUES")}
    done = subprocess.run([PYTHON, "-m", "resque", "pool"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "resque-pool.yml" in done.stderr and "-w" in done.stderr


# --- supervising real workers ---------------------------------------------------------------


def test_the_pool_reads_the_config_file_given_with_minus_f(
    r: redis.Redis, pools: list[PoolProcess], redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "pool.yml").write_text("mail: 1\n")
    pool = start_pool(pools, redis_url, tmp_path, "-f", "pool.yml")
    pool.wait_workers(r, {"mail": 1})
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_the_pool_starts_the_configured_workers_and_term_unregisters_them_all(
    r: redis.Redis, pools: list[PoolProcess], redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "resque-pool.yml").write_text(
        '"high,low": 2\nmail: 1\nidle: 0\nproduction:\n  mail: 2\n')
    pool = start_pool(pools, redis_url, tmp_path, env={"RACK_ENV": "production"})
    workers = pool.wait_workers(r, {"high,low": 2, "mail": 2})
    assert all(title_of(pid).startswith("resque") for pid in workers)
    assert title_of(pool.pid).startswith("resque-pool-")
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0
    assert not r.exists("resque:workers")
    assert not any(alive(pid) for pid in workers)


def test_count_multiplies_the_inline_config(
    r: redis.Redis, pools: list[PoolProcess], redis_url: str, tmp_path: Path
) -> None:
    pool = start_pool(pools, redis_url, tmp_path, "-w", "high,low:1", "-w", "mail",
                      env={"COUNT": "2"})
    pool.wait_workers(r, {"high,low": 2, "mail": 2})
    pool.signal(signal.SIGINT)
    assert pool.wait() == 0
    assert not r.exists("resque:workers")


def test_a_sigkilled_worker_is_replaced(
    r: redis.Redis, pools: list[PoolProcess], redis_url: str, tmp_path: Path
) -> None:
    pool = start_pool(pools, redis_url, tmp_path, "-w", "high:2")
    first = pool.wait_workers(r, {"high": 2})
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in pool.workers(), what="the killed worker to be reaped")
    # Its registration stays until a pruner finds it dead; the live children are two again.
    wait_for(lambda: len(pool.workers()) == 2 and all(
        pid in registered(r) for pid in pool.workers()), timeout=15,
        what=f"a replacement worker; output:\n{pool.output()}")
    now = set(pool.workers())
    assert victim not in now and len(now & set(first)) == 1
    assert "was killed by SIGKILL" in pool.output()
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_a_worker_that_cannot_start_is_retried_with_a_growing_delay(
    r: redis.Redis, pools: list[PoolProcess], redis_url: str, tmp_path: Path
) -> None:
    pool = start_pool(pools, redis_url, tmp_path, "-w", "high", "--app", "no_such_module")
    wait_for(lambda: pool.output().count("restarting in") >= 2, timeout=15,
             what=f"two restarts; output:\n{pool.output()}")
    delays = [line.rsplit("restarting in ", 1)[1].split("s")[0]
              for line in pool.output().splitlines() if "restarting in" in line]
    assert delays[:2] == ["1", "2"]
    assert pool.popen.poll() is None  # the pool itself keeps going
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_a_pool_whose_workers_redis_refuses_gives_up_with_one_line_and_status_1(
    pools: list[PoolProcess], tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis", "--requirepass", "the-right-one",
                         client_kwargs={"password": "the-right-one"}).start()
    try:
        refused = f"redis://:a-wrong-one@127.0.0.1:{server.port}/0"
        pool = start_pool(pools, refused, tmp_path, "-w", "high:2",
                          env={"RESQUE_POOL_GIVE_UP_AFTER": "3"})
        status = pool.wait(60)
    finally:
        server.stop()
    giving_up = [line for line in pool.output().splitlines() if "giving up" in line]
    assert (status, len(giving_up)) == (1, 1), pool.output()
    assert giving_up[0].endswith(
        "giving up: the worker on high failed at start-up 3 times in a row (the last exited "
        "with status 1 within 5s of starting); its own error is above. Fix that and start "
        "the pool again (RESQUE_POOL_GIVE_UP_AFTER=3)")


def test_hup_with_a_changed_config_replaces_the_workers_and_the_running_job_finishes(
    r: redis.Redis, pools: list[PoolProcess], redis_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "resque-pool.yml"
    config.write_text("high: 1\n")
    pool = start_pool(pools, redis_url, tmp_path)
    (old,) = pool.wait_workers(r, {"high": 1})
    push(r, "high", "Sleep", 1.5, "running")
    wait_for(lambda: "start:running" in notes(r), what="the job to start")
    config.write_text('"high,low": 2\n')
    pool.signal(signal.SIGHUP)
    new = pool.wait_workers(r, {"high,low": 2}, timeout=20)
    assert old not in new
    assert notes(r) == ["start:running", "end:running"]  # finished, not interrupted
    assert not queued(r, "high") and not r.llen("resque:failed")
    assert r.get("resque:stat:processed") == b"1"
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0
    assert not r.exists("resque:workers")


def test_term_requeues_running_jobs_and_every_worker_unregisters(
    r: redis.Redis, pools: list[PoolProcess], redis_url: str, tmp_path: Path
) -> None:
    pool = start_pool(pools, redis_url, tmp_path, "-w", "high:2")
    workers = pool.wait_workers(r, {"high": 2})
    push(r, "high", "Sleep", 30, "a")
    push(r, "high", "Sleep", 30, "b")
    wait_for(lambda: sorted(notes(r)) == ["start:a", "start:b"], what="both jobs to start")
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0
    assert not r.exists("resque:workers")
    assert len(queued(r, "high")) == 2  # interrupted, back at the head of their queue
    assert not any(alive(pid) for pid in workers)


def test_quit_lets_the_running_jobs_finish_then_the_pool_exits(
    r: redis.Redis, pools: list[PoolProcess], redis_url: str, tmp_path: Path
) -> None:
    pool = start_pool(pools, redis_url, tmp_path, "-w", "high:2")
    pool.wait_workers(r, {"high": 2})
    push(r, "high", "Sleep", 1, "a")
    push(r, "high", "Sleep", 1, "b")
    wait_for(lambda: sorted(notes(r)) == ["start:a", "start:b"], what="both jobs to start")
    pool.signal(signal.SIGQUIT)
    assert pool.wait() == 0
    assert sorted(notes(r)) == ["end:a", "end:b", "start:a", "start:b"]
    assert not queued(r, "high") and not r.llen("resque:failed")
    assert not r.exists("resque:workers")


def test_usr2_pauses_every_worker_and_cont_resumes_them(
    r: redis.Redis, pools: list[PoolProcess], redis_url: str, tmp_path: Path
) -> None:
    pool = start_pool(pools, redis_url, tmp_path, "-w", "high:2")
    workers = pool.wait_workers(r, {"high": 2})
    pool.signal(signal.SIGUSR2)
    # Not read from the titles: a USR2 that lands during a step is overwritten by "Waiting".
    time.sleep(0.5)
    push(r, "high", "Record", "while-paused")
    with pytest.raises(AssertionError):
        wait_for(lambda: notes(r), timeout=1.0)
    assert all(alive(pid) for pid in workers)
    pool.signal(signal.SIGCONT)
    wait_for(lambda: notes(r) == ["while-paused"], what="the job after CONT")
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0


def test_the_pool_module_is_not_imported_by_a_worker() -> None:
    done = subprocess.run(
        [PYTHON, "-c", "import sys, resque.worker, resque.cli; "
         "print(json.dumps(sorted(m for m in sys.modules if m.startswith('resque'))))"
         .replace("import sys", "import json, sys")],
        capture_output=True, text=True, timeout=30, cwd=TESTS)
    assert "resque.pool" not in json.loads(done.stdout)


def test_the_pidfile_is_written_only_once_the_signal_handlers_are_in_place(
    pools: list[PoolProcess], redis_url: str, tmp_path: Path
) -> None:
    # A FIFO holds the pool at the moment it writes its pid: a TERM sent then must stop it
    # cleanly (exit 0), not kill it with the default action.
    pidfile = tmp_path / "pool.pid"
    os.mkfifo(pidfile)
    pool = start_pool(pools, redis_url, tmp_path, "-w", "high", "--pidfile", str(pidfile))
    wait_for(lambda: blocked_opening_a_fifo(pool.pid), what="the pool to open the pidfile")
    pool.signal(signal.SIGTERM)
    assert read_fifo(pidfile) == str(pool.pid)
    assert pool.wait() == 0
