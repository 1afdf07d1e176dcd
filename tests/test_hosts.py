"""Many hosts on one Redis, for real: workers in four Linux network namespaces, each with its
own host name and process ids (tests/support/hostkit.py), and a host that vanishes
mid-work.

The short form, for CI: heartbeats every second, a worker dead after 5 silent seconds, a look
for dead workers every second. ``bench/hosts.py`` is the long form (throughput and Redis CPU
per job from 1 to 4 hosts, and the vanish at the default 60 s / 300 s).

What a vanished host leaves, and who settles it (docs/guides/scaling.md):
* our worker's jobs in flight go back to their queues exactly once, when a pruner on another
  host sees its heartbeat expire: between ``heartbeat_expiry - heartbeat_interval`` and
  ``heartbeat_expiry + 2 * prune_interval`` after the host went;
* an in-process worker's batch holds jobs it finished but had not yet acknowledged (the next
  step would have): those run again. Nothing else runs twice, and nothing is lost;
* a Ruby worker's job is failed as Ruby fails it (``PruneDeadWorkerDirtyExit``), and a Ruby
  worker that prunes our vanished worker fails its job the same way: never both.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from hostapp import RAN, RELEASE, STARTED
from support.hostkit import PYTHON, TESTS, Host, HostProcess, Network, require_hosts
from support.peers import require_ruby_resque
from support.replies import bytes_list

from resque import Resque, layout

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

EXPIRY, BEAT, PRUNE = 5.0, 1.0, 1.0
FAST = {"RESQUE_HEARTBEAT_INTERVAL": str(BEAT), "RESQUE_HEARTBEAT_EXPIRY": str(EXPIRY),
        "RESQUE_PRUNE_INTERVAL": str(PRUNE)}
# When a vanished worker is pruned: its last heartbeat was up to BEAT before, and is written
# in whole seconds (up to 1 s older than it says); someone prunes every PRUNE, under a lock
# that lives PRUNE.
EARLIEST, LATEST = EXPIRY - BEAT - 1, EXPIRY + 2 * PRUNE
LOADED = 3.0  # seconds a loaded 2-core machine may add to LATEST (a late heartbeat thread)
KEYS = layout.Keys()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Callable[[int], Network]]:
    require_hosts()
    made: list[Network] = []

    def make(hosts: int) -> Network:
        net = Network(hosts, tmp_path)
        made.append(net)
        return net.start()

    try:
        yield make
    finally:
        for net in made:
            net.close()


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 30.0,
             processes: tuple[HostProcess, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.log.name}\n{p.output()[-2000:]}" for p in processes)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(0.02)


def worker_ids(r: redis.Redis, host: Host | None = None) -> set[str]:
    ids = {layout.text(w) for w in r.smembers(KEYS.workers)}
    return {w for w in ids if host is None or w.startswith(host.name + ":")}


def entries(r: redis.Redis, key: str) -> list[tuple[str, str]]:
    """``(tag, host)`` of each entry hostapp jobs wrote to ``key``, in order."""
    found = []
    for raw in r.lrange(key, 0, -1):
        tag, _, host = layout.text(raw).rpartition("@")
        found.append((tag, host))
    return found


def run_in(net: Network, host: Host, *command: str) -> str:
    process = net.spawn(host, "command", list(command))
    code = process.popen.wait(60)
    assert code == 0, process.output()
    return process.output()


def watch_pruning(r: redis.Redis, doomed: set[str], since: float,
                  processes: tuple[HostProcess, ...]) -> dict[str, float]:
    """Seconds from ``since`` until each of ``doomed`` left the workers set."""
    pruned: dict[str, float] = {}

    def gone() -> bool:
        now = time.monotonic()
        for worker in doomed - set(pruned) - worker_ids(r):
            pruned[worker] = now - since
        return len(pruned) == len(doomed)

    wait_for(gone, f"the pruning of {sorted(doomed)}", LATEST + LOADED + 10, processes)
    return pruned


def test_workers_on_four_hosts_keep_their_host_names_and_spare_each_other(
    network: Callable[[int], Network]
) -> None:
    """Ids carry each host's name and its own pids; ``resque workers`` lists them all, and a
    prune run on one host leaves the others' workers alone although their pids are not
    processes there."""
    net = network(4)
    r = net.client()
    first, *others = net.hosts
    workers = [net.worker(first, "count", "--no-fork", "--interval", "0.2")]
    for host, mode in zip(others, (("--fork",), ("-c", "4"), ("--fork",)), strict=True):
        # Process ids above any the first host will have used when it prunes.
        run_in(net, host, "sh", "-c", "for n in $(seq 40); do /bin/true; done")
        workers.append(net.worker(host, "count", *mode, "--interval", "0.2"))
    wait_for(lambda: len(worker_ids(r)) == 4, "4 workers", processes=tuple(workers))
    Resque(r).enqueue_many("Count", [[f"c{n}"] for n in range(400)], queue="count")
    wait_for(lambda: r.llen(RAN) == 400, "400 jobs", processes=tuple(workers))

    registered = worker_ids(r)
    listed = json.loads(run_in(net, first, PYTHON, "-m", "resque", "workers", "--json",
                               "--redis", net.redis_url))
    others_pids = {int(w.split(":")[1]) for w in registered if not w.startswith("host1:")}
    here = run_in(net, first, "ls", "/proc").split()
    assert others_pids.isdisjoint(int(p) for p in here if p.isdigit())  # the premise
    pruned = run_in(net, first, PYTHON, "-m", "resque", "prune", "--force", "--redis",
                    net.redis_url)
    assert (sorted(w.split(":")[0] for w in registered), sorted(w["id"] for w in listed),
            pruned.strip(), worker_ids(r)) == (
        ["host1", "host2", "host3", "host4"], sorted(registered), "no dead workers", registered)


def test_a_vanished_host_loses_no_job_and_its_jobs_in_flight_run_again_once(
    network: Callable[[int], Network], report: Callable[[str], None]
) -> None:
    """Host 4 vanishes (link cut, every process SIGKILLed) with jobs held in flight by a
    forking, an in-process and a threaded worker, while an in-process worker there shares a
    stream of jobs with the other hosts. The other hosts' workers prune its workers by
    heartbeat expiry and requeue each held job once; of the stream, only jobs of its last,
    unacknowledged batch run twice; none is lost."""
    net = network(4)
    r = net.client()
    client = Resque(r)
    *survivors, doomed = net.hosts
    holds = {"hold_fork": 1, "hold_inline": 1, "hold_threads": 2}
    for queue, slots in holds.items():
        client.enqueue_many("Hold", [[f"{queue}{n}"] for n in range(slots)], queue=queue)
    held_digests = [digest(raw) for queue in holds
                    for raw in bytes_list(r.lrange(KEYS.queue(queue), 0, -1))]
    held = [net.worker(doomed, "hold_fork", "--fork", env=FAST),
            net.worker(doomed, "hold_inline", "--no-fork", env=FAST),
            net.worker(doomed, "hold_threads", "-c", "2", env=FAST),
            net.worker(doomed, "count", "--no-fork", env=FAST)]
    wait_for(lambda: r.llen(STARTED) == 4, "4 jobs held on host4", processes=tuple(held))
    every_queue = ",".join([*holds, "count"])
    rescuers = [net.worker(host, every_queue, *mode, env=FAST)
                for host, mode in zip(survivors, (("--fork",), ("--no-fork",), ("-c", "4")),
                                      strict=True)]
    processes = (*held, *rescuers)
    wait_for(lambda: len(worker_ids(r)) == 7, "7 workers", processes=processes)
    stream = 20_000
    client.enqueue_many("Count", [[f"c{n}"] for n in range(stream)], queue="count")
    wait_for(lambda: r.llen(RAN) >= 1000, "the stream to flow", processes=processes)

    doomed_ids = worker_ids(r, doomed)
    vanished_at = time.monotonic()
    net.vanish(doomed)
    r.set(RELEASE, 1)
    pruned = watch_pruning(r, doomed_ids, vanished_at, processes)
    wait_for(lambda: {t for t, _ in entries(r, RAN)} >= {f"c{n}" for n in range(stream)}
             | {f"{q}{n}" for q, slots in holds.items() for n in range(slots)},
             "every job to run", processes=processes)

    ran = entries(r, RAN)
    runs = Counter(tag for tag, _ in ran)
    first_host: dict[str, str] = {}
    for tag, host in ran:
        first_host.setdefault(tag, host)
    twice = sorted(tag for tag, count in runs.items() if count > 1)
    unexplained = [tag for tag in twice if first_host[tag] != doomed.name or runs[tag] > 2]
    hold_runs = sorted((tag, host != doomed.name) for tag, host in ran if tag.startswith("hold"))
    requeues = {layout.text(k): int(v) for k, v in r.hgetall(KEYS.recovered).items()}
    held_requeues = [requeues.get(held) for held in held_digests]
    lost = stream + 4 - len(runs)
    report(f"vanished host: {len(doomed_ids)} workers pruned {min(pruned.values()):.1f}-"
           f"{max(pruned.values()):.1f} s after (expiry {EXPIRY:.0f} s, beat {BEAT:.0f} s, "
           f"prune {PRUNE:.0f} s: documented {EARLIEST:.0f}-{LATEST:.0f} s); "
           f"{stream + 4} jobs, lost {lost}, 4 held in flight requeued once each, "
           f"{len(twice)} ran twice (all in host4's unacknowledged batch)")
    assert (lost, unexplained, hold_runs, held_requeues, max(requeues.values()),
            failures(r)) == (
        0, [], [("hold_fork0", True), ("hold_inline0", True), ("hold_threads0", True),
                ("hold_threads1", True)], [1, 1, 1, 1], 1, [])
    assert EARLIEST <= min(pruned.values()) <= max(pruned.values()) <= LATEST + LOADED


def digest(payload: bytes) -> str:
    """How the pruner names a payload (its exact bytes, job id included) when it counts its
    requeues."""
    return hashlib.sha1(payload).hexdigest()


def failures(r: redis.Redis) -> list[tuple[str, str, str]]:
    """``(exception, job class, worker)`` of each failure record."""
    found = []
    for raw in r.lrange(KEYS.failed, 0, -1):
        record = json.loads(raw)
        found.append((record["exception"], record["payload"]["class"], record["worker"]))
    return found


# --- with Ruby resque 3.0 on the hosts -----------------------------------------------------


def ruby_worker(net: Network, host: Host, queues: str, interval: float) -> HostProcess:
    """A real Ruby resque worker in ``host`` (tests/ruby/hosts.rb), heartbeat and heartbeat
    pruning on the same short clock as ours."""
    lib = require_ruby_resque()
    return net.spawn(host, "ruby", [
        "ruby", "-I", lib, str(TESTS / "ruby" / "hosts.rb"), net.redis_url, queues,
        str(interval)], env={"HOSTS_HEARTBEAT_INTERVAL": f"{BEAT:.0f}",
                             "HOSTS_PRUNE_INTERVAL": f"{EXPIRY:.0f}"})


def hold_in_flight(net: Network, host: Host, ruby: bool) -> list[HostProcess]:
    """On ``host``: our forking worker holding ``hold_fork0`` and, with ``ruby``, a Ruby
    worker holding ``ruby0``; returns once both jobs have started."""
    r = net.client()
    client = Resque(r)
    client.enqueue_to("hold_fork", "Hold", "hold_fork0")
    started = [net.worker(host, "hold_fork", "--fork", env=FAST)]
    if ruby:
        client.enqueue_to("ruby_hold", "Hold", "ruby0")
        started.append(ruby_worker(net, host, "ruby_hold", 0.2))
    wait_for(lambda: r.llen(STARTED) == len(started), "the held jobs to start",
             processes=tuple(started))
    return started


@pytest.mark.ruby
def test_our_pruners_fail_a_vanished_ruby_workers_job_as_ruby_does(
    network: Callable[[int], Network]
) -> None:
    """A Ruby worker and ours vanish with their host, each holding a job; our worker on the
    other host prunes both by heartbeat: ours is requeued and runs once, Ruby's is failed
    with Ruby's own ``PruneDeadWorkerDirtyExit`` and never runs again."""
    net = network(2)
    r = net.client()
    survivor, doomed = net.hosts
    held = hold_in_flight(net, doomed, ruby=True)
    doomed_ids = worker_ids(r, doomed)
    rescuer = net.worker(survivor, "hold_fork,ruby_hold", "--no-fork", env=FAST)
    wait_for(lambda: len(worker_ids(r)) == 3, "3 workers", processes=(*held, rescuer))
    ruby_id = next(w for w in doomed_ids if w.endswith(":ruby_hold"))
    vanished_at = time.monotonic()
    net.vanish(doomed)
    r.set(RELEASE, 1)
    pruned = watch_pruning(r, doomed_ids, vanished_at, (rescuer,))
    wait_for(lambda: r.llen(RAN) == 1, "the requeued job", processes=(rescuer,))
    time.sleep(1.0)  # room for a wrong second run
    assert (entries(r, RAN), failures(r), worker_ids(r)) == (
        [("hold_fork0", "host1")], [(layout.PRUNE_DIRTY_EXIT, "Hold", ruby_id)],
        worker_ids(r, survivor))
    assert EARLIEST <= min(pruned.values()) <= max(pruned.values()) <= LATEST + LOADED


@pytest.mark.ruby
def test_ruby_prunes_our_vanished_worker_and_its_job_never_runs_again(
    network: Callable[[int], Network]
) -> None:
    """Ruby's heartbeat pruning, started on the other host once our vanished worker's
    heartbeat is older than Ruby's ``prune_interval``, unregisters it and fails its job;
    our pruner then finds only the orphaned in-flight list and drops it, requeueing nothing."""
    net = network(2)
    r = net.client()
    survivor, doomed = net.hosts
    hold_in_flight(net, doomed, ruby=False)
    (ours,) = worker_ids(r, doomed)
    net.vanish(doomed)
    r.set(RELEASE, 1)

    def silent() -> bool:
        beat = layout.parse_time(layout.text(r.hget(KEYS.heartbeat, ours) or b""))
        return beat is not None and r.time()[0] - beat.timestamp() > EXPIRY

    wait_for(silent, "its heartbeat to expire for Ruby", EXPIRY + 5)
    pruner = ruby_worker(net, survivor, "elsewhere", 0)
    assert pruner.popen.wait(60) == 0, pruner.output()
    after_ruby = (worker_ids(r), failures(r))
    rescuer = net.worker(survivor, "hold_fork", "--no-fork", env=FAST)
    wait_for(lambda: not r.exists(KEYS.inflight(ours)), "our pruner to drop the orphan",
             EXPIRY * 2 + LOADED + 10, processes=(rescuer,))
    assert (after_ruby, entries(r, RAN), r.llen(KEYS.queue("hold_fork")), r.hlen(KEYS.recovered),
            failures(r)) == (
        (set(), [(layout.PRUNE_DIRTY_EXIT, "Hold", ours)]), [], 0, 0,
        [(layout.PRUNE_DIRTY_EXIT, "Hold", ours)])
