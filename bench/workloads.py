"""Realistic workloads, ours beside dramatiq, Celery, arq and RQ in one run.

    python bench/workloads.py [--quick] [--repeat K] [--only io_sleep,cpu] [--markdown FILE]

Workloads (bench/load/jobs.py: the same functions for every framework):

* ``io_sleep``: each job waits 10 ms (a database call, say); 16 at once per worker process.
* ``io_http``: each job GETs a local HTTP server that answers after 10 ms; 16 at once.
* ``io_many``: the 10 ms wait, 128 at once (what asyncio is for: many waits, one process); RQ
  is left out (it would need 128 processes).
* ``cpu``: a mixed CPU-bound load (jobs of ~5 ms and ~1 ms of pure Python, 1 in 4 long) on one
  process per core (2 here): ``resque pool`` for ours.

Frameworks, each as its docs configure it for that load: ours with ``-c N`` threads (a plain
job) and with ``-c N`` ``async def`` jobs (they share one event loop), N = 16 (128 for
``io_many``) in every framework; dramatiq with N
threads (``async def`` through its AsyncIO middleware for the asyncio rows); Celery with its
thread pool and its gevent pool, N each; arq with ``max_jobs=N`` and ``poll_delay`` 10 ms
(its default, 0.5 s, caps it; asyncio; it needs
redis-py < 6, so it runs from an environment of its own, made on first use in
``~/.cache/resque-bench/arq``); RQ with a worker pool of N ``SimpleWorker`` processes (RQ
runs one job per process). CPU row: 2 processes each (dramatiq ``-p 2 -t 1``, Celery prefork
``-c 2``, RQ ``worker-pool -n 2``).

Each (workload, framework) run: the jobs are queued first, then the worker starts; every job
appends its enqueue, start and end times to a file of its process (no network). jobs/s is
all jobs over first start to last end; "job ms" is the mean time a job took, and "slots busy"
jobs/s x job time / slots (N, or 2 processes): how much of its concurrency a framework keeps
busy. CPU per job is the worker's processes' user + sys CPU
over the run (from the first job on) per job; RSS is the sum over the worker's processes at
the end. Then, with the same worker, jobs are enqueued one at a time at a steady rate (100/s)
and p50/p99 are their enqueue-to-start latencies. Rounds alternate the order of frameworks;
the table shows medians. Targets: ours first or within 10% of the best peer's jobs/s in every
row, and ahead of every peer on the asyncio rows. Not a test; never run in CI. Needs
``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from report import Run, markdown_table, text_table

from resque.embedded import EmbeddedRedis, free_port

BENCH = Path(__file__).resolve().parent
LOAD = BENCH / "load"
PYTHON = sys.executable
ARQ_ENV = Path.home() / ".cache" / "resque-bench" / "arq"
ARQ_VERSION = "0.28.0"
CONCURRENCY = 16
PROCESSES = 2
RATE = 100.0  # jobs/s of the latency run


@dataclass(frozen=True)
class Workload:
    kind: str  # the function of bench/load/jobs.py (aio_ for the async variant)
    title: str
    jobs: int
    latency_jobs: int
    concurrency: int = CONCURRENCY  # jobs at once in one worker process (I/O rows)


WORKLOADS = {
    "io_sleep": Workload("io_sleep", "I/O: 10 ms wait, 16 at once", 3000, 300),
    "io_http": Workload("io_http", "I/O: HTTP call answered in 10 ms, 16 at once", 3000, 300),
    "cpu": Workload("cpu", "CPU: 1 ms and 5 ms jobs, 2 processes", 1500, 200),
    "io_many": Workload("io_sleep", "I/O: 10 ms wait, 128 at once", 12000, 300, 128),
}


@dataclass(frozen=True)
class Contender:
    """One framework configured one way: its worker command for a workload kind."""

    name: str
    ours: bool
    asyncio: bool  # runs the async def variant of I/O jobs
    kinds: tuple[str, ...]
    cpu_name: str = ""  # its name in the CPU row, where it runs other processes

    def label(self, workload: Workload) -> str:
        return self.cpu_name if workload.kind == "cpu" and self.cpu_name else self.name

    def job_kind(self, workload: Workload) -> str:
        return "aio_" + workload.kind.removeprefix("io_") if self.asyncio else workload.kind

    def framework(self) -> str:
        return self.name.split()[0].lower()

    def command(self, workload: Workload, url: str) -> list[str]:
        cpu = workload.kind == "cpu"
        n = PROCESSES if cpu else workload.concurrency
        if self.name.startswith("resque"):
            if cpu:
                return [PYTHON, "-m", "resque", "pool", "-w", f"bench:{n}", "--app", "ours",
                        "--no-fork", "--redis", url]
            return [PYTHON, "-m", "resque", "work", "--app", "ours", "-q", "bench", "-c",
                    str(n), "--redis", url]
        if self.name.startswith("dramatiq"):
            shape = ["-p", str(n), "-t", "1"] if cpu else ["-p", "1", "-t", str(n)]
            return [PYTHON, "-m", "dramatiq", "dramatiq_app", *shape, "-Q", "bench"]
        if self.name.startswith("Celery"):
            pool = "prefork" if cpu else self.name.split()[1]
            return [PYTHON, "-m", "celery", "-A", "celery_app", "worker", "-P", pool, "-c",
                    str(n), "-Q", "bench", "--without-heartbeat", "--without-gossip",
                    "--without-mingle", "-l", "WARNING"]
        if self.name.startswith("arq"):
            return [str(ARQ_ENV / "bin" / "arq"), "arq_app.WorkerSettings"]
        return [PYTHON, "-m", "rq.cli", "worker-pool", "-n", str(n), "-w",
                "rq.worker.SimpleWorker", "-u", url, "-q", "bench"]


IO = ("io_sleep", "io_http")
MANY = ("io_many",)  # RQ would need 128 processes (4.6 GB here): not run
CONTENDERS = [
    Contender("resque -c N (threads)", True, False, (*IO, *MANY)),
    Contender("resque -c N (async def)", True, True, (*IO, *MANY)),
    Contender("resque pool (2 processes)", True, False, ("cpu",)),
    Contender("dramatiq (threads)", False, False, (*IO, *MANY, "cpu"), "dramatiq (-p 2 -t 1)"),
    Contender("dramatiq (async def)", False, True, (*IO, *MANY)),
    Contender("Celery threads", False, False, (*IO, *MANY, "cpu"), "Celery prefork (-c 2)"),
    Contender("Celery gevent", False, False, (*IO, *MANY)),
    Contender("arq (async def)", False, True, (*IO, *MANY)),
    Contender("RQ (worker pool)", False, False, (*IO, "cpu"), "RQ (worker pool, 2)"),
]


# --- processes and their cost ----------------------------------------------------------------


def group_of(leader: int) -> list[int]:
    """The worker and every process under it (a pool puts its workers in groups of their
    own, so the process group is not enough)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [leader], [leader]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def cpu_seconds(leader: int) -> float:
    """User + sys CPU of the group's processes, with that of children they have reaped."""
    ticks = 0
    for pid in group_of(leader):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(leader: int) -> float:
    total = 0
    for pid in group_of(leader):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def redis_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class Records:
    """The lines jobs appended, one file per process, read back as ``(enqueued, start, end)``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def read(self) -> list[tuple[float, float, float]]:
        found = []
        for path in self.directory.iterdir():
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 3:
                    found.append((float(parts[0]), float(parts[1]), float(parts[2])))
        return found

    def count(self) -> int:
        return sum(path.read_bytes().count(b"\n") for path in self.directory.iterdir())


# --- one run ----------------------------------------------------------------------------------


@dataclass
class Result:
    rate: float
    job_ms: float  # mean time a job took, start to end
    busy: float  # share of the worker's slots (N, or 2 processes) busy with a job
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # worker CPU per job
    rss_mb: float
    redis_us: float  # redis-server CPU per job


class Bench:
    def __init__(self, url: str, http: str, workdir: Path, quick: bool) -> None:
        self.url, self.http, self.workdir, self.quick = url, http, workdir, quick
        self.redis = redis.Redis.from_url(url)
        self.runs = 0

    def env(self, out: Path, concurrency: int = CONCURRENCY) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RESQUE_", "QUEUE"))}
        env.update(PYTHONPATH=str(LOAD), BENCH_REDIS=self.url, BENCH_HTTP=self.http,
                   BENCH_OUT=str(out), BENCH_CONCURRENCY=str(concurrency),
                   PYTHONUNBUFFERED="1")
        return env

    def enqueue(self, who: Contender, kind: str, count: int, rate: float, out: Path) -> None:
        python = str(ARQ_ENV / "bin" / "python") if who.framework() == "arq" else PYTHON
        done = subprocess.run([python, str(LOAD / "producer.py"), who.framework(), kind,
                               str(count), str(rate)], env=self.env(out), cwd=LOAD,
                              capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"enqueue for {who.name} failed: {done.stderr[-2000:]}")

    def run(self, who: Contender, workload: Workload) -> Result:
        self.runs += 1
        out = self.workdir / f"run{self.runs}"
        out.mkdir()
        self.redis.flushall()
        jobs = workload.jobs // (3 if self.quick else 1)
        kind = who.job_kind(workload)
        self.enqueue(who, kind, jobs, 0, out)
        log = open(self.workdir / f"run{self.runs}.log", "wb")  # closed below
        worker = subprocess.Popen(who.command(workload, self.url),
                                  env=self.env(out, workload.concurrency), cwd=LOAD,
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        records = Records(out)
        try:
            return self._measure(who, workload, worker, records, jobs, out)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{who.name} on {workload.kind}: {exc}\n"
                               f"{(self.workdir / f'run{self.runs}.log').read_text()[-2000:]}"
                               ) from None
        finally:
            stop(worker)
            log.close()

    def _measure(self, who: Contender, workload: Workload, worker: subprocess.Popen[bytes],
                 records: Records, jobs: int, out: Path) -> Result:
        wait(lambda: records.count() > 0, 60, "the first job", worker)
        first, cpu0, redis0 = records.count(), cpu_seconds(worker.pid), redis_cpu(self.redis)
        wait(lambda: records.count() >= jobs, 300, f"{jobs} jobs", worker)
        cpu1, redis1, rss = cpu_seconds(worker.pid), redis_cpu(self.redis), rss_mb(worker.pid)
        done = records.read()
        rate = len(done) / (max(e for _, _, e in done) - min(s for _, s, _ in done))
        job = statistics.mean(e - s for _, s, e in done)
        slots = PROCESSES if workload.kind == "cpu" else workload.concurrency
        latency_jobs = workload.latency_jobs // (2 if self.quick else 1)
        self.enqueue(who, who.job_kind(workload), latency_jobs, RATE, out)
        wait(lambda: records.count() >= jobs + latency_jobs, 120, "the latency jobs", worker)
        waits = sorted((s - q) * 1000 for q, s, _ in records.read() if q > 0)
        counted = max(1, jobs - first)
        return Result(rate, job * 1000, rate * job / slots, statistics.median(waits),
                      waits[max(0, int(0.99 * len(waits)) - 1)],
                      (cpu1 - cpu0) / counted * 1000, rss, (redis1 - redis0) / counted * 1e6)


def wait(predicate: object, timeout: float, what: str, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)


def stop(worker: subprocess.Popen[bytes]) -> None:
    """TERM the worker's group, then KILL it and everything under it after 15 s."""
    everything = group_of(worker.pid)
    try:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(15)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        pass
    for pid in everything:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    worker.wait()


def ensure_arq() -> None:
    """arq's own environment (it pins redis-py < 6), made once."""
    if (ARQ_ENV / "bin" / "arq").exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(ARQ_ENV)], check=True)
    subprocess.run([str(ARQ_ENV / "bin" / "pip"), "install", "-q", f"arq=={ARQ_VERSION}"],
                   check=True)


# --- the table --------------------------------------------------------------------------------


def versions() -> str:
    from importlib.metadata import version

    found = [f"{name} {version(name)}" for name in ("dramatiq", "celery", "gevent", "rq")]
    arq = subprocess.run([str(ARQ_ENV / "bin" / "python"), "-c",
                          "import arq, redis; print(arq.VERSION, redis.__version__)"],
                         capture_output=True, text=True)
    arq_version, arq_redis = (arq.stdout.split() + ["?", "?"])[:2]
    return ", ".join([*found, f"arq {arq_version} (redis-py {arq_redis})"])


def median_of(results: list[Result], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in results))


def verdicts(workload: Workload, results: dict[str, list[Result]]) -> list[str]:
    """Ours against the best peer on jobs/s; the asyncio target on the I/O rows."""
    rates = {name: median_of(runs, "rate") for name, runs in results.items() if runs}
    ours = {n: r for n, r in rates.items() if n.startswith("resque")}
    peers = {n: r for n, r in rates.items() if not n.startswith("resque")}
    if not ours or not peers:
        return []
    best_ours, best_peer = max(ours, key=ours.__getitem__), max(peers, key=peers.__getitem__)
    ratio = ours[best_ours] / peers[best_peer]
    lines = [f"{workload.title}: best of ours ({best_ours}) {ratio:.2f}x the best peer "
             f"({best_peer}): {'PASS' if ratio >= 0.9 else 'MISS'} (first or within 10%)"]
    async_ours = next((r for n, r in ours.items() if "async" in n), None)
    if async_ours is not None:
        ahead = async_ours / peers[best_peer]
        lines.append(f"{workload.title}: ours with async def {ahead:.2f}x the best peer: "
                     f"{'PASS' if ahead > 1 else 'MISS'} (ahead of every peer)")
    return lines


def table(results: dict[str, dict[str, list[Result]]]) -> tuple[list[str], list[list[str]]]:
    head = ["workload", "framework", "jobs/s", "job ms", "slots busy", "p50 ms", "p99 ms",
            "CPU ms/job", "RSS MB", "Redis us/job"]
    rows = []
    for kind, by_name in results.items():
        for name, runs in by_name.items():
            if not runs:
                rows.append([kind, name, "failed", "", "", "", "", "", "", ""])
                continue
            rows.append([kind, name, f"{median_of(runs, 'rate'):,.0f}",
                         f"{median_of(runs, 'job_ms'):.1f}", f"{median_of(runs, 'busy'):.0%}",
                         f"{median_of(runs, 'p50_ms'):.1f}", f"{median_of(runs, 'p99_ms'):.1f}",
                         f"{median_of(runs, 'cpu_ms'):.2f}", f"{median_of(runs, 'rss_mb'):.0f}",
                         f"{median_of(runs, 'redis_us'):.0f}"])
    return head, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a third of the jobs, one round")
    parser.add_argument("--repeat", type=int, help="rounds (default 2; quick 1)")
    parser.add_argument("--only", help="workloads, e.g. io_sleep,cpu")
    parser.add_argument("--contenders", help="names containing any of these, comma-separated")
    parser.add_argument("--markdown", help="write the table (docs/reports/workloads-table.md)")
    options = parser.parse_args()
    kinds = options.only.split(",") if options.only else list(WORKLOADS)
    wanted = options.contenders.split(",") if options.contenders else None
    contenders = [c for c in CONTENDERS
                  if wanted is None or any(w.lower() in c.name.lower() for w in wanted)]
    ensure_arq()
    run = Run()
    results: dict[str, dict[str, list[Result]]] = {k: {} for k in kinds}
    errors: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="resque-load-", dir="/dev/shm"))
    port = free_port()
    server = subprocess.Popen([PYTHON, str(LOAD / "http_server.py"), str(port)])
    try:
        with EmbeddedRedis() as redis_server:
            bench = Bench(redis_server.url, f"127.0.0.1:{port}", workdir, options.quick)
            rounds = options.repeat or (1 if options.quick else 2)
            for number in range(rounds):
                order = contenders if number % 2 == 0 else contenders[::-1]
                for kind in kinds:
                    for who in (c for c in order if kind in c.kinds):
                        label = who.label(WORKLOADS[kind])
                        runs = results[kind].setdefault(label, [])
                        try:
                            result = bench.run(who, WORKLOADS[kind])
                        except RuntimeError as exc:
                            errors.append(str(exc))
                            print(f"  {kind} {label}: FAILED {str(exc)[-600:]}", file=sys.stderr)
                            continue
                        runs.append(result)
                        print(f"  {kind} {label}: {result.rate:,.0f} jobs/s, p50 "
                              f"{result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, CPU "
                              f"{result.cpu_ms:.2f} ms/job, {result.rss_mb:.0f} MB",
                              file=sys.stderr, flush=True)
            binary = redis_server.binary
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    head, rows = table(results)
    lines = [line for kind in kinds for line in verdicts(WORKLOADS[kind], results[kind])]
    print(text_table(head, rows))
    print("\n".join(lines))
    if options.markdown:
        sections = [markdown_table(head, rows), "\n".join(f"* {line}" for line in lines)]
        run.page(options.markdown, binary, sections, [
            ("compared with", versions()),
            ("shape", f"I/O rows: one worker process, N = {CONCURRENCY} (128 for io_many) "
                      f"jobs at once (RQ: N processes); CPU row: {PROCESSES} processes; latency at "
                      f"{RATE:.0f} jobs/s; medians of "
                      f"{options.repeat or (1 if options.quick else 2)} round(s)")])
    return 1 if errors or any("MISS" in line for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
