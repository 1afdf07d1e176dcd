"""Many hosts on one Redis, the long form: throughput and Redis cost per job from 1 to 4
hosts, then a host that vanishes, at the worker's default heartbeat settings.

    python bench/hosts.py [--jobs N] [--per-host W] [--mode no-fork|fork|threads]
                          [--vanish] [--expiry S --beat S --prune S] [--markdown FILE]

Hosts are Linux network namespaces (tests/support/hostkit.py: each its own host name, pids
and /proc, a veth link to Redis in a namespace of its own); needs root and iproute2. For 1, 2, 3
and 4 hosts, W workers per host drain N no-op jobs: the jobs are queued under another key
while the workers start, then renamed into place (and a wake-up published, as our enqueue
does). jobs/s is N over the time from that rename until ``stat:processed`` reaches N; Redis
CPU per job is redis-server's user + sys time over the same window, and Redis calls per job
come from ``INFO commandstats`` (the bench's own polling taken out).

``--vanish`` then runs the scenario of tests/test_hosts.py at the given heartbeat settings
(default: the worker's, 60 s / 300 s / 30 s, so it takes about six minutes): host 4 vanishes
(link cut, every process SIGKILLed) holding jobs in flight while sharing a stream; it reports
when each of its workers was pruned, jobs lost, jobs run twice and why.

On a 2-core machine all hosts share the same two cores (and Redis one of them): the total
cannot grow with hosts; what must stay flat is the cost per job in Redis. Not a test.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import redis  # noqa: E402
from report import Run, markdown_table, text_table  # noqa: E402
from support.hostkit import Host, HostProcess, Network, unavailable  # noqa: E402

from resque import Resque, layout  # noqa: E402
from resque.embedded import find_redis_server  # noqa: E402

KEYS = layout.Keys()
STAGING = "bench:staging"
QUEUE = "count"
MODES = {"no-fork": ("--no-fork",), "fork": ("--fork",), "threads": ("-c", "4")}


@dataclass
class Drain:
    hosts: int
    workers: int
    jobs: int
    seconds: float
    redis_cpu: float  # seconds of redis-server CPU in the window
    calls: int  # Redis commands in the window, the bench's own taken out

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    def row(self) -> list[str]:
        return [str(self.hosts), str(self.workers), f"{self.rate:,.0f}",
                f"{self.rate / self.hosts:,.0f}", f"{self.redis_cpu / self.jobs * 1e6:.1f}",
                f"{self.calls / self.jobs:.3f}"]


def wait_for(predicate: Callable[[], object], what: str, timeout: float,
             processes: list[HostProcess]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.log.name}\n{p.output()[-1500:]}" for p in processes)
            raise SystemExit(f"bench broken: timed out waiting for {what}\n{logs}")
        time.sleep(0.005)


def calls(r: redis.Redis) -> int:
    return sum(int(stats["calls"]) for stats in r.info("commandstats").values())


def cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def stop(processes: list[HostProcess]) -> None:
    for process in processes:
        process.signal(signal.SIGTERM)
    for process in processes:
        process.popen.wait(30)


def drain(net: Network, hosts: list[Host], per_host: int, mode: tuple[str, ...],
          jobs: int) -> Drain:
    r = net.client()
    r.flushall()
    Resque(r).enqueue_many("Noop", [[n] for n in range(jobs)], queue=QUEUE)
    r.rename(KEYS.queue(QUEUE), STAGING)
    workers = [net.worker(host, QUEUE, *mode, "--interval", "1") for host in hosts
               for _ in range(per_host)]
    wait_for(lambda: r.scard(KEYS.workers) == len(workers), f"{len(workers)} workers", 60,
             workers)
    time.sleep(0.5 + 0.1 * len(workers))  # start-up CPU settles before the clock runs
    polls = 0
    before_calls, before_cpu = calls(r), cpu(r)
    started = time.monotonic()
    with r.pipeline(transaction=True) as pipe:
        pipe.rename(STAGING, KEYS.queue(QUEUE))
        pipe.publish(KEYS.wake_channel(QUEUE), "")
        pipe.execute()
    while int(r.get(KEYS.stat("processed")) or 0) < jobs:
        polls += 1
        if time.monotonic() - started > 300:
            raise SystemExit("bench broken: the drain took over 5 minutes")
        time.sleep(0.005)
    seconds = time.monotonic() - started
    used_cpu = cpu(r) - before_cpu
    # Ours in the window: MULTI RENAME PUBLISH EXEC, the GETs, two INFOs (this one counted).
    used_calls = calls(r) - before_calls - (4 + polls + 1 + 2)
    stop(workers)
    if r.llen(KEYS.queue(QUEUE)) or r.llen(KEYS.failed):
        raise SystemExit("bench broken: jobs left queued or failed")
    return Drain(len(hosts), len(workers), jobs, seconds, used_cpu, used_calls)


# --- the vanishing host ------------------------------------------------------------------------


@dataclass
class Vanish:
    pruned: dict[str, float]
    jobs: int
    lost: int
    twice: int
    unexplained: int
    held_requeued_once: int
    settings: tuple[float, float, float]

    def lines(self) -> list[str]:
        expiry, beat, prune = self.settings
        times = sorted(self.pruned.values())
        return [
            f"settings: heartbeat every {beat:g} s, dead after {expiry:g} s, a prune every "
            f"{prune:g} s: documented window {expiry - beat - 1:g}-{expiry + 2 * prune:g} s",
            f"{len(times)} workers of the vanished host pruned {times[0]:.1f}-{times[-1]:.1f} s "
            f"after it vanished",
            f"{self.jobs:,} jobs: lost {self.lost}; {self.held_requeued_once} of 4 held in "
            f"flight requeued exactly once; {self.twice} ran twice, {self.unexplained} of them "
            f"not explained by the vanished host's unacknowledged batch",
        ]


def vanish(net: Network, settings: tuple[float, float, float], stream: int) -> Vanish:
    """tests/test_hosts.py's scenario: host 4 vanishes holding jobs, mid-stream."""
    expiry, beat, prune = settings
    env = {"RESQUE_HEARTBEAT_INTERVAL": str(beat), "RESQUE_HEARTBEAT_EXPIRY": str(expiry),
           "RESQUE_PRUNE_INTERVAL": str(prune)}
    r = net.client()
    r.flushall()
    client = Resque(r)
    *survivors, doomed = net.hosts
    holds = {"hold_fork": 1, "hold_inline": 1, "hold_threads": 2}
    for queue, slots in holds.items():
        client.enqueue_many("Hold", [[f"{queue}{n}"] for n in range(slots)], queue=queue)
    processes = [net.worker(doomed, "hold_fork", "--fork", env=env),
                 net.worker(doomed, "hold_inline", "--no-fork", env=env),
                 net.worker(doomed, "hold_threads", "-c", "2", env=env),
                 net.worker(doomed, QUEUE, "--no-fork", env=env)]
    wait_for(lambda: r.llen("hosts:started") == 4, "the held jobs", 60, processes)
    every = ",".join([*holds, QUEUE])
    for host, mode in zip(survivors, MODES.values(), strict=False):
        processes.append(net.worker(host, every, *mode, env=env))
    wait_for(lambda: r.scard(KEYS.workers) == 7, "7 workers", 60, processes)
    client.enqueue_many("Count", [[f"c{n}"] for n in range(stream)], queue=QUEUE)
    wait_for(lambda: r.llen("hosts:ran") >= stream // 20, "the stream", 60, processes)
    doomed_ids = {layout.text(w) for w in r.smembers(KEYS.workers)
                  if layout.text(w).startswith(doomed.name + ":")}
    vanished_at = time.monotonic()
    net.vanish(doomed)
    r.set("hosts:release", 1)
    pruned: dict[str, float] = {}

    def all_pruned() -> bool:
        left = {layout.text(w) for w in r.smembers(KEYS.workers)}
        for worker in doomed_ids - set(pruned) - left:
            pruned[worker] = time.monotonic() - vanished_at
        return len(pruned) == len(doomed_ids)

    wait_for(all_pruned, "the pruning", expiry + 2 * prune + 120, processes)
    tags = {f"c{n}" for n in range(stream)} | {f"{q}{n}" for q, k in holds.items()
                                                for n in range(k)}
    wait_for(lambda: r.llen("hosts:ran") >= len(tags), "every job", 120, processes)
    time.sleep(1.0)
    ran = [layout.text(e).rpartition("@") for e in r.lrange("hosts:ran", 0, -1)]
    runs = Counter(tag for tag, _, _ in ran)
    first: dict[str, str] = {}
    for tag, _, where in ran:
        first.setdefault(tag, where)
    twice = [tag for tag, n in runs.items() if n > 1]
    unexplained = [t for t in twice if first[t] != doomed.name or runs[t] > 2]
    once = sum(1 for tag in tags if tag.startswith("hold") and runs[tag] == 1
               and first[tag] != doomed.name)
    return Vanish(pruned, len(tags), len(tags - set(runs)), len(twice), len(unexplained),
                  once, settings)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--per-host", type=int, default=1, help="workers per host")
    parser.add_argument("--mode", choices=sorted(MODES), default="no-fork")
    parser.add_argument("--vanish", action="store_true", help="then vanish a host")
    parser.add_argument("--expiry", type=float, default=300.0)
    parser.add_argument("--beat", type=float, default=60.0)
    parser.add_argument("--prune", type=float, default=30.0)
    parser.add_argument("--stream", type=int, default=50_000, help="jobs of the vanish run")
    parser.add_argument("--markdown", help="write the tables here (docs/reports/hosts-table.md)")
    options = parser.parse_args()
    reason = unavailable()
    if reason:
        raise SystemExit(f"cannot make hosts here: {reason}")
    run = Run()
    drains: list[Drain] = []
    vanished: Vanish | None = None
    with tempfile.TemporaryDirectory(prefix="resque-hosts-") as directory:
        with Network(4, Path(directory)) as net:
            for count in range(1, 5):
                result = drain(net, net.hosts[:count], options.per_host, MODES[options.mode],
                               options.jobs)
                print(f"  {count} host(s): {result.rate:,.0f} jobs/s", file=sys.stderr)
                drains.append(result)
            if options.vanish:
                vanished = vanish(net, (options.expiry, options.beat, options.prune),
                                  options.stream)
    head = ["hosts", "workers", "jobs/s", "jobs/s per host", "Redis CPU us/job",
            "Redis calls/job"]
    rows = [d.row() for d in drains]
    cpus = [d.redis_cpu / d.jobs for d in drains]
    flat = f"Redis CPU per job, most / least over 1-4 hosts: {max(cpus) / min(cpus):.2f}"
    print(text_table(head, rows))
    print(flat)
    for line in vanished.lines() if vanished else []:
        print(line)
    if options.markdown:
        sections = [markdown_table(head, rows), flat + "."]
        if vanished:
            sections.append("A host vanishes:\n\n" + "\n".join(f"* {line}"
                                                                for line in vanished.lines()))
        run.page(options.markdown, find_redis_server(), sections, [
            ("workers", f"{options.per_host} per host, `{options.mode}`; {options.jobs:,} "
                        "no-op jobs per run; Redis in a namespace of its own, hosts on veth "
                        "links (one machine: every host shares its cores)")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
