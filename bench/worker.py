"""The worker benchmark: every target of the Performance issue, ours against RQ in the same run.

    python bench/worker.py [--quick] [--repeat K] [--only 1,4] [--json FILE] [--markdown FILE]

Starts its own redis-server (resque.embedded) on loopback, then runs each scenario for this
project and for RQ, interleaved (the order alternates each round) and repeated K times
(default 3; ``--quick``: once, with fewer jobs), and prints one table: the median and range of
each figure, the ratio to RQ, and each target with PASS or MISS. Workers are real processes
(``python -m resque work`` and ``python -m rq.cli worker``), one per worker, loading the same
no-op jobs from bench/benchjobs.py. Redis runs on the same machine.

How throughput is measured (scenarios 1, 2, 7), alike for both frameworks: the jobs are
queued and the queue is renamed away; the workers start and register; after a short settle
the queue is renamed back (and, for ours, a wake-up published: what our enqueue does). The
first job and the last K jobs (K = worker processes) are ``benchjobs.stamp`` jobs that record
``time.time()``: jobs/s is all jobs over the time from the first job's start to the last
job's end, so interpreter start-up and worker registration are left out for both. Redis CPU
per job is redis-server's own CPU time (``INFO cpu``, user + sys) over the same window divided
by the jobs. Each run is checked: queue empty, nothing failed, every job counted.

Scenarios: 1 in-process throughput (``resque work --no-fork`` vs RQ's SimpleWorker);
2 fork-per-job throughput (default mode vs RQ's Worker); 3 Redis CPU per job (from 1 and 2);
4 enqueue-to-start latency of an idle worker on two queues (200 jobs 20 ms apart, the job
records its start, the enqueuer the time just before its call); 5 enqueue, one job per call
against a raw redis-py RPUSH loop, and bulk (bench/enqueue.py's measurements, RQ beside them);
6 peak RSS (VmHWM) of an idle in-process worker after a few jobs, and the modules it imported;
7 scaling over 1, 2, 4 and 8 in-process worker processes (1 is scenario 1's run).

``--markdown FILE`` also writes the table as a Markdown page fragment, with the date, the
command and the machine (CPU, cores, Python, Redis), for the docs to include
(``docs/reports/performance-table.md``): the published table is always a generated one.

Not a test; never run in CI. Needs ``pip install -e '.[bench]'`` (RQ).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import benchjobs
import enqueue as enqueue_bench
import redis
from benchtable import SCALING, Enqueue, Samples, Table, Throughput, judge

from resque import Resque, ids, layout
from resque.embedded import EmbeddedRedis

BENCH = Path(__file__).resolve().parent
QUEUE = "bench"
HIGH = "bench_high"  # the latency worker listens on HIGH,QUEUE; jobs go to QUEUE
STAGING = "bench:staging"
PYTHON = sys.executable

@dataclass(frozen=True)
class Sizes:
    """Jobs per run; RQ gets fewer so that its runs take seconds, not minutes. Our throughput
    runs start at ``ours_*`` jobs and then size themselves to last about ``seconds``."""

    ours_inproc: int
    rq_inproc: int
    ours_fork: int
    rq_fork: int
    latency_jobs: int
    enqueue_jobs: int
    bulk_jobs: int
    rq_enqueue_jobs: int
    rq_bulk_jobs: int
    seconds: float


FULL = Sizes(50_000, 1_500, 2_000, 200, 200, 20_000, 200_000, 2_000, 10_000, 2.0)
QUICK = Sizes(20_000, 400, 600, 50, 200, 10_000, 100_000, 500, 3_000, 1.0)


class Sizer:
    """Jobs for our next run of a kind: enough to last ``seconds`` at the last rate seen,
    never fewer than the first run's, at most 20 times as many."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.rates: dict[str, float] = {}

    def jobs(self, kind: str, first: int) -> int:
        rate = self.rates.get(kind)
        return first if rate is None else int(min(20 * first, max(first, rate * self.seconds)))

    def saw(self, kind: str, rate: float) -> None:
        self.rates[kind] = rate


# --- worker processes ---------------------------------------------------------------------


class Processes:
    """Worker processes of one run, each in its own session, output in a log file."""

    def __init__(self, url: str, logdir: Path) -> None:
        self.url = url
        self.logdir = logdir
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.started = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RESQUE_", "QUEUE"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), env.get("PYTHONPATH")]))
        env["BENCH_REDIS"] = self.url
        return env

    def start(self, command: list[str]) -> subprocess.Popen[bytes]:
        self.started += 1
        log = self.logdir / f"worker-{self.started}.log"
        with open(log, "wb") as sink:
            popen = subprocess.Popen(
                command, env=self.env(), stdin=subprocess.DEVNULL, stdout=sink,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.logdir,
            )
        self.running.append((popen, log))
        return popen

    def output(self) -> str:
        return "\n".join(
            f"--- {log.name} (pid {p.pid}) ---\n{log.read_text(errors='replace')[-3000:]}"
            for p, log in self.running
        )

    def stop(self, timeout: float = 15.0) -> None:
        """TERM every worker (idle workers exit at once), then KILL what is left."""
        for popen, _ in self.running:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for popen, _ in self.running:
            try:
                popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                popen.wait()
        self.running.clear()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, procs: Processes) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"bench broken: timed out after {timeout:.0f}s waiting for {what}\n"
                             f"{procs.output()}")
        time.sleep(0.005)


def redis_cpu(client: redis.Redis) -> float:
    """redis-server's own CPU time so far, user + sys, in seconds."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# --- the two frameworks, behind the same small interface ----------------------------------


class Framework(Protocol):
    name: str
    redis: redis.Redis

    def load(self, jobs: list[tuple[str, list[Any]]]) -> None: ...
    def queue_key(self) -> str: ...
    def worker(self, queues: Sequence[str], fork: bool) -> list[str]: ...
    def registered(self) -> int: ...
    def release(self) -> None: ...
    def enqueue(self, queue: str, job: str, *args: Any) -> None: ...
    def done(self) -> int: ...
    def check(self, total: int) -> None: ...


class Ours:
    name = "resque"

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = Resque(url)
        self.redis = self.client.redis

    def load(self, jobs: list[tuple[str, list[Any]]]) -> None:
        # Runs of the same class go in one enqueue_many call each, in order.
        start = 0
        while start < len(jobs):
            name = jobs[start][0]
            end = start
            while end < len(jobs) and jobs[end][0] == name:
                end += 1
            self.client.enqueue_many(name, [args for _, args in jobs[start:end]], queue=QUEUE)
            start = end

    def queue_key(self) -> str:
        return self.client.keys.queue(QUEUE)

    def worker(self, queues: Sequence[str], fork: bool) -> list[str]:
        return [PYTHON, "-m", "resque", "work", "--app", "benchjobs", "-q", ",".join(queues),
                "--fork" if fork else "--no-fork", "--redis", self.url]

    def registered(self) -> int:
        return int(self.redis.scard(self.client.keys.workers))

    def release(self) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.rename(STAGING, self.queue_key())
            pipe.publish(self.client.keys.wake_channel(QUEUE), "")
            pipe.execute()

    def enqueue(self, queue: str, job: str, *args: Any) -> None:
        self.client.enqueue_to(queue, job, *args)

    def done(self) -> int:
        return self.client.stat("processed")

    def check(self, total: int) -> None:
        keys = self.client.keys
        processed = self.client.stat("processed")
        failed = self.redis.llen(keys.failed)
        left = self.redis.llen(self.queue_key())
        if processed != total or failed or left:
            raise SystemExit(f"bench broken (ours): processed {processed} of {total}, "
                             f"{failed} failed, {left} left queued")


class RQ:
    name = "RQ"

    def __init__(self, url: str) -> None:
        from rq import Queue

        self.url = url
        self.redis = redis.Redis.from_url(url)
        self.Queue = Queue
        self.queue = Queue(QUEUE, connection=self.redis)

    def load(self, jobs: list[tuple[str, list[Any]]]) -> None:
        prepare = self.Queue.prepare_data
        for start in range(0, len(jobs), 5_000):
            chunk = jobs[start : start + 5_000]
            self.queue.enqueue_many([prepare(name, args) for name, args in chunk])

    def queue_key(self) -> str:
        return str(self.queue.key)

    def worker(self, queues: Sequence[str], fork: bool) -> list[str]:
        cls = "rq.worker.Worker" if fork else "rq.worker.SimpleWorker"
        return [PYTHON, "-m", "rq.cli", "worker", "--quiet", "-w", cls, "-u", self.url, *queues]

    def registered(self) -> int:
        return int(self.redis.scard("rq:workers"))

    def release(self) -> None:
        self.redis.rename(STAGING, self.queue_key())  # wakes the workers' BLMOVE/BLPOP

    def enqueue(self, queue: str, job: str, *args: Any) -> None:
        self.Queue(queue, connection=self.redis).enqueue(job, *args)

    def done(self) -> int:
        from rq.registry import FinishedJobRegistry

        return int(FinishedJobRegistry(queue=self.queue).count)

    def check(self, total: int) -> None:
        from rq.registry import FailedJobRegistry

        finished = self.done()
        failed = FailedJobRegistry(queue=self.queue).count
        left = self.redis.llen(self.queue_key())
        if finished != total or failed or left:
            raise SystemExit(f"bench broken (RQ): finished {finished} of {total}, "
                             f"{failed} failed, {left} left queued")


# --- scenarios: one run each ---------------------------------------------------------------


def run_throughput(fw: Framework, procs: Processes, jobs: int, workers: int,
                   fork: bool) -> Throughput:
    r = fw.redis
    r.flushall()
    batch = [("benchjobs.stamp", [0])] + [("benchjobs.noop", [n]) for n in range(jobs)]
    batch += [("benchjobs.stamp", [n + 1]) for n in range(workers)]
    total = len(batch)
    fw.load(batch)
    r.rename(fw.queue_key(), STAGING)
    for _ in range(workers):
        procs.start(fw.worker([QUEUE], fork))
    wait_for(lambda: fw.registered() >= workers, 60, f"{workers} {fw.name} workers", procs)
    time.sleep(0.3 + 0.1 * workers)  # let start-up CPU settle before the clock runs
    cpu = redis_cpu(r)
    fw.release()
    wait_for(lambda: r.llen(benchjobs.STAMPS) >= workers + 1, max(60.0, total / 20),
             f"{fw.name} to finish {total} jobs", procs)
    cpu = redis_cpu(r) - cpu
    stamps = [float(s) for s in r.lrange(benchjobs.STAMPS, 0, -1)]
    # The last jobs have run; their acknowledgements may still be on the way.
    wait_for(lambda: fw.done() >= total, 30, f"{fw.name} to count every job", procs)
    procs.stop()
    fw.check(total)
    return Throughput(total / (max(stamps) - min(stamps)), cpu / total * 1e6, total)


def run_latency(fw: Framework, procs: Processes, jobs: int, fork: bool) -> tuple[float, float]:
    """p50 and p99 enqueue-to-start latency in ms, one idle worker on HIGH,QUEUE."""
    r = fw.redis
    r.flushall()
    procs.start(fw.worker([HIGH, QUEUE], fork))
    wait_for(lambda: fw.registered() >= 1, 60, f"a {fw.name} worker", procs)
    time.sleep(0.5)
    enqueued: list[float] = []
    begin = time.monotonic()
    for n in range(jobs):
        pause = begin + n * 0.02 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        enqueued.append(time.time())
        fw.enqueue(QUEUE, "benchjobs.started", n)
    wait_for(lambda: r.llen(benchjobs.STARTED) >= jobs, 30, f"{fw.name} latency jobs", procs)
    procs.stop()
    latencies = []
    for entry in r.lrange(benchjobs.STARTED, 0, -1):
        index, at = layout.text(entry).split(":")
        latencies.append((float(at) - enqueued[int(index)]) * 1e3)
    latencies.sort()
    return statistics.median(latencies), latencies[math.ceil(0.99 * len(latencies)) - 1]


def run_rss(fw: Framework, procs: Processes) -> tuple[float, list[str]]:
    """Peak RSS (MB) of an idle in-process worker after a few jobs, and its modules."""
    r = fw.redis
    r.flushall()
    popen = procs.start(fw.worker([QUEUE], False))
    wait_for(lambda: fw.registered() >= 1, 60, f"a {fw.name} worker", procs)
    for n in range(3):
        fw.enqueue(QUEUE, "benchjobs.noop", n)
    fw.enqueue(QUEUE, "benchjobs.report_modules")
    report = wait_for(lambda: r.lindex(benchjobs.MODULES, 0), 30, "the modules report", procs)
    time.sleep(1.0)
    status = Path(f"/proc/{popen.pid}/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines()
                  if line.startswith("VmHWM:"))
    procs.stop()
    reported = json.loads(report)
    if reported["pid"] != popen.pid:
        raise SystemExit(f"bench broken: the {fw.name} job ran in pid {reported['pid']}, "
                         f"not in the worker {popen.pid}")
    return hwm_kb / 1024, list(reported["modules"])


def run_enqueue(url: str, sizes: Sizes, rq_first: bool) -> Enqueue:
    """bench/enqueue.py's raw RPUSH, enqueue and bulk, with RQ's enqueue and enqueue_many."""
    from rq import Queue

    client = redis.Redis.from_url(url)
    client.flushall()
    ours = Resque(redis.Redis.from_url(url))
    key = ours.keys.queue(enqueue_bench.QUEUE)
    # What enqueue writes, job id included, so the raw loop pushes as many bytes.
    payload = layout.encode_job(enqueue_bench.CLASS, enqueue_bench.ARGS, ids.new_id())
    rq_queue = Queue(enqueue_bench.QUEUE, connection=redis.Redis.from_url(url))
    args = enqueue_bench.ARGS

    def rq_single(n: int) -> None:
        enqueue = rq_queue.enqueue
        for _ in range(n):
            enqueue("benchjobs.noop", *args)

    def rq_bulk(n: int) -> None:
        rq_queue.enqueue_many([Queue.prepare_data("benchjobs.noop", args) for _ in range(n)])

    def rq_timed(run: Callable[[int], None], n: int) -> float:
        client.flushall()
        started = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - started
        if client.llen(rq_queue.key) != n:
            raise SystemExit("bench broken: RQ did not queue every job")
        return n / elapsed

    def ours_timed(run: Callable[[int], None], n: int) -> float:
        return enqueue_bench.timed(run, client, key, n).rate

    def rq_rates() -> tuple[float, float]:
        return rq_timed(rq_single, sizes.rq_enqueue_jobs), rq_timed(rq_bulk, sizes.rq_bulk_jobs)

    rq_pair = rq_rates() if rq_first else (0.0, 0.0)
    # raw and enqueue back to back: their ratio is what the target is about.
    raw = ours_timed(lambda n: enqueue_bench.run_raw(client, key, payload, n),
                     sizes.enqueue_jobs)
    single = ours_timed(lambda n: enqueue_bench.run_enqueue(ours, n), sizes.enqueue_jobs)
    bulk = ours_timed(lambda n: enqueue_bench.run_bulk(ours, n), sizes.bulk_jobs)
    if not rq_first:
        rq_pair = rq_rates()
    client.flushall()
    return Enqueue(raw, single, bulk, *rq_pair)


# --- main -----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine() -> str:
    import rq

    return (f"{cpu_model()}, {os.cpu_count()} CPUs; {platform.system()} {platform.release()}; "
            f"python {platform.python_version()}, redis-py {redis.__version__} (hiredis: "
            f"{'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}), RQ {rq.__version__}")


def write_markdown(path: str, table: Table, command: str, redis_version: str, minutes: float,
                   sizes: Sizes, load: tuple[float, float]) -> None:
    """The table as a page fragment for the docs: when, how and on what it was measured."""
    import rq

    now = datetime.datetime.now(datetime.timezone.utc)
    facts = [
        ("date", now.strftime("%Y-%m-%d %H:%M UTC")),
        ("command", f"`{command}` ({minutes:.1f} min)"),
        ("CPU", f"{cpu_model()}, {os.cpu_count()} cores"),
        ("system", f"{platform.system()} {platform.release()}, load average "
                   f"{load[0]:.1f} at the start, {load[1]:.1f} at the end"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("Redis", f"redis-server {redis_version} on loopback TCP; redis-py {redis.__version__}"
                  f" (hiredis: {'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'})"),
        ("compared with", f"RQ {rq.__version__}: SimpleWorker in-process, Worker forking"),
        ("jobs per run", f"ours {sizes.ours_inproc:,}+ in-process and {sizes.ours_fork:,}+ "
                         f"forking (sized to about {sizes.seconds:.0f} s after the first run); "
                         f"RQ {sizes.rq_inproc:,} and {sizes.rq_fork:,}"),
    ]
    lines = [f"<!-- Written by `{command}`; do not edit by hand. -->", "",
             "| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in facts), "",
             "'vs RQ' is how many times better ours is; each target is PASS or MISS.", "",
             table.markdown(), ""]
    Path(path).write_text("\n".join(lines))


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round, fewer jobs (~1 min)")
    parser.add_argument("--repeat", type=int, help="interleaved rounds (default 3; quick 1)")
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,4")
    parser.add_argument("--json", help="also write every sample to this file")
    parser.add_argument("--markdown", help="also write the table, date and machine as Markdown "
                        "(docs/reports/performance-table.md)")
    return parser.parse_args(argv)


def scenarios(only: str | None) -> set[int]:
    chosen = {int(n) for n in only.split(",")} if only else set(range(1, 8))
    if 3 in chosen:
        chosen |= {1, 2}  # Redis CPU per job is measured in the throughput runs
    if 7 in chosen:
        chosen.add(1)  # one process is scenario 1's run
    return chosen


class Rounds:
    """The scenarios chosen, run for both frameworks in an order that alternates by round."""

    def __init__(self, server: EmbeddedRedis, procs: Processes, sizes: Sizes, quick: bool,
                 samples: Samples) -> None:
        self.server = server
        self.procs = procs
        self.sizes = sizes
        self.quick = quick
        self.samples = samples
        self.frameworks: list[Framework] = [Ours(server.url), RQ(server.url)]
        self.sizer = Sizer(sizes.seconds)

    def run(self, number: int, only: set[int]) -> None:
        order = self.frameworks if number % 2 == 0 else self.frameworks[::-1]
        steps: dict[int, Callable[[list[Framework], int], None]] = {
            1: self.inproc, 2: self.fork, 4: self.latency, 5: self.enqueue, 6: self.rss,
            7: self.scaling,
        }
        for scenario, step in steps.items():
            if scenario in only:
                step(order, number)

    def throughput(self, fw: Framework, workers: int, fork: bool) -> Throughput:
        sizes = self.sizes
        if fw.name == "RQ":
            jobs = sizes.rq_fork if fork else sizes.rq_inproc
            return run_throughput(fw, self.procs, jobs, workers, fork)
        kind = f"{'fork' if fork else 'inproc'} x{workers}"
        jobs = self.sizer.jobs(kind, sizes.ours_fork if fork else sizes.ours_inproc)
        result = run_throughput(fw, self.procs, jobs, workers, fork)
        self.sizer.saw(kind, result.rate)
        return result

    def inproc(self, order: list[Framework], number: int) -> None:
        for fw in order:
            self.samples.note(f"{fw.name} inproc x1", self.throughput(fw, 1, False))

    def fork(self, order: list[Framework], number: int) -> None:
        for fw in order:
            self.samples.note(f"{fw.name} fork", self.throughput(fw, 1, True))

    def latency(self, order: list[Framework], number: int) -> None:
        jobs = self.sizes.latency_jobs
        for fw in order:
            self.samples.note(f"{fw.name} latency inproc", run_latency(fw, self.procs, jobs, False))
            if not self.quick:
                self.samples.note(f"{fw.name} latency fork",
                                  run_latency(fw, self.procs, jobs, True))

    def enqueue(self, order: list[Framework], number: int) -> None:
        self.samples.note("enqueue", run_enqueue(self.server.url, self.sizes,
                                                 rq_first=number % 2 == 1))

    def rss(self, order: list[Framework], number: int) -> None:
        for fw in order:
            rss, imported = run_rss(fw, self.procs)
            self.samples.note(f"{fw.name} rss", rss)
            if fw.name == "resque":
                self.samples.modules = imported

    def scaling(self, order: list[Framework], number: int) -> None:
        for count in SCALING[1:]:
            for fw in order:
                self.samples.note(f"{fw.name} inproc x{count}", self.throughput(fw, count, False))


def report(options: argparse.Namespace, argv: list[str] | None, table: Table, samples: Samples,
           run: tuple[str, int, float, float]) -> None:
    """The table on stdout; the Markdown fragment and the samples' JSON if asked for."""
    version, repeat, minutes, load_at_start = run
    sizes = QUICK if options.quick else FULL
    print(f"bench/worker.py, {repeat} round(s){' (quick)' if options.quick else ''}, "
          f"{minutes:.1f} min; {machine()}; redis-server {version} on loopback TCP")
    print(f"jobs per run: ours {sizes.ours_inproc:,}+ in-process, {sizes.ours_fork:,}+ forking "
          f"(sized to ~{sizes.seconds:.0f}s after the first run); RQ {sizes.rq_inproc:,} "
          f"SimpleWorker, {sizes.rq_fork:,} Worker; 'vs RQ' = how many times better ours is")
    print()
    table.print()
    heavy = [m for m in samples.modules if m.startswith(("resque.web", "resque.scheduler"))]
    if heavy:
        print(f"\nthe worker imported: {', '.join(heavy)}")
    if options.markdown:
        command = "python bench/worker.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_markdown(options.markdown, table, command.strip(), version, minutes, sizes,
                       (load_at_start, os.getloadavg()[0]))
    if options.json:
        with open(options.json, "w") as handle:
            json.dump({k: [v.__dict__ if hasattr(v, "__dict__") else v for v in vs]
                       for k, vs in samples.by_name.items()}, handle, indent=1)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    sizes = QUICK if options.quick else FULL
    repeat = options.repeat or (1 if options.quick else 3)
    only = scenarios(options.only)
    samples = Samples()
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    logdir = Path(tempfile.mkdtemp(prefix="resque-bench-"))
    with EmbeddedRedis() as server:
        procs = Processes(server.url, logdir)
        version = enqueue_bench.redis_server_version(server.binary)
        rounds = Rounds(server, procs, sizes, options.quick, samples)
        try:
            for number in range(repeat):
                print(f"round {number + 1}/{repeat}", file=sys.stderr, flush=True)
                rounds.run(number, only)
        finally:
            procs.stop()
    shutil.rmtree(logdir, ignore_errors=True)
    minutes = (time.monotonic() - started) / 60
    table = judge(samples, only)
    report(options, argv, table, samples, (version, repeat, minutes, load_at_start))
    return 1 if table.misses else 0


if __name__ == "__main__":
    sys.exit(main())
