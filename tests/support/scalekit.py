"""A farm of a given size, and what each page and verb costs Redis on it.

``fill`` builds a farm: queued jobs over many queues, delayed jobs, failures, registered
workers and the status records of tracked jobs, with the library's own writers where the size
allows (``enqueue_many``, ``StatusStore.write``) and the wire contract's encoders elsewhere.
``probes`` lists every dashboard page and admin verb with the arguments a user would give
(first, middle and last pages). ``cost`` runs one and reports
what Redis did for it: commands by name (``INFO commandstats``, a script's inner commands
included), bytes Redis sent (``total_net_output_bytes``) and the wall time.

tests/test_scale.py runs the probes on a farm and on one twice its size: a page or verb whose
commands or bytes grow with the data scans it. bench/million.py runs them at a million jobs
and times them.
"""

from __future__ import annotations

import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from starlette.testclient import TestClient

from resque import Resque, layout
from resque.admin import Admin
from resque.failure.operations import Filter
from resque.metrics import record_sample
from resque.prometheus.snapshot import read_snapshot
from resque.scheduler.schedule import Schedules
from resque.store import ACK_OK, Ack, Acks, Reserved, WorkerStore

JOB = "Scale::Job"
ARGS: list[Any] = [12345, "user@example.com", {"plan": "pro"}]  # a typical small job
CHUNK = 10_000


@dataclass(frozen=True)
class Sizes:
    queued: int  # jobs, spread evenly over ``queues`` queues
    queues: int
    delayed: int  # jobs, ``per_timestamp`` per timestamp
    per_timestamp: int
    failures: int
    workers: int  # registered records (half of them working); none runs
    tracked: int = 0  # status records of finished tracked jobs (the Jobs tab)

    def times(self, factor: int) -> Sizes:
        """``factor`` times as many jobs, delayed jobs, failures and status records; the same
        queues and workers (what a page costs per queue and per worker is stated, not
        hidden)."""
        return Sizes(self.queued * factor, self.queues, self.delayed * factor,
                     self.per_timestamp, self.failures * factor, self.workers,
                     self.tracked * factor)


# tracked: the status index keeps at most status.INDEX_LIMIT ids (100,000)
MILLION = Sizes(queued=1_000_000, queues=1_000, delayed=100_000, per_timestamp=10,
                failures=100_000, workers=500, tracked=100_000)


def queue_name(n: int) -> str:
    return f"q{n:05d}"


def worker_id(n: int) -> str:
    return f"scale-host-{n % 20}:{1000 + n}:{queue_name(n % 7)}"


def tracked_id(n: int) -> str:
    return f"scale-{n:08d}"


FIRST_TIMESTAMP = 4_000_000_000  # far in the future: nothing becomes due during a run


@dataclass
class Filled:
    seconds: dict[str, float] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)  # used_memory added by each part


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def fill(resque: Resque, sizes: Sizes) -> Filled:
    """Build the farm; returns how long each part took and the memory it added."""
    r, filled = resque.redis, Filled()
    parts: list[tuple[str, Callable[[], None]]] = [
        ("queued", lambda: fill_queued(resque, sizes)),
        ("delayed", lambda: fill_delayed(resque, sizes)),
        ("failures", lambda: fill_failures(r, resque.keys, sizes)),
        ("workers", lambda: fill_workers(r, resque.keys, sizes)),
        ("tracked", lambda: fill_tracked(resque, sizes)),
    ]
    for name, part in parts:
        before, started = used_memory(r), time.perf_counter()
        part()
        filled.seconds[name] = time.perf_counter() - started
        filled.memory[name] = used_memory(r) - before
    return filled


def fill_queued(resque: Resque, sizes: Sizes) -> None:
    per_queue = sizes.queued // sizes.queues
    for n in range(sizes.queues):
        resque.enqueue_many(JOB, [[i, *ARGS[1:]] for i in range(per_queue)], queue=queue_name(n))


def fill_delayed(resque: Resque, sizes: Sizes) -> None:
    """With the script ``enqueue_at`` runs (one call per job, pipelined ``CHUNK`` at a
    time): the keys resque-scheduler writes, as it writes them."""
    keys, script = resque.keys, resque.delayed._delay
    for start in range(0, sizes.delayed, CHUNK):
        with resque.redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + CHUNK, sizes.delayed)):
                timestamp = FIRST_TIMESTAMP + i // sizes.per_timestamp
                item = layout.delayed_item(JOB, [i, *ARGS[1:]], queue_name(i % 7))
                script(keys=[keys.delayed(timestamp), keys.timestamps(item),
                             keys.delayed_schedule],
                       args=[item, layout.delayed_member(timestamp), timestamp], client=pipe)
            pipe.execute()


def fill_failures(r: redis.Redis, keys: layout.Keys, sizes: Sizes) -> None:
    record = layout.failure_record(
        payload={"class": JOB, "args": [0, *ARGS[1:]]}, exception="RuntimeError",
        error="boom " * 8, backtrace=["app/jobs.py:12:in perform"] * 5,
        worker=worker_id(0), queue=queue_name(0), now=time.time())
    head, tail = record.split('"args":[0', 1)
    with r.pipeline(transaction=False) as pipe:
        for start in range(0, sizes.failures, CHUNK):
            stop = min(start + CHUNK, sizes.failures)
            pipe.rpush(keys.failed, *(f'{head}"args":[{i}{tail}' for i in range(start, stop)))
        pipe.execute()


def fill_workers(r: redis.Redis, keys: layout.Keys, sizes: Sizes) -> None:
    beat = layout.heartbeat_at(time.time())
    with r.pipeline(transaction=False) as pipe:
        for n in range(sizes.workers):
            worker = worker_id(n)
            pipe.sadd(keys.workers, worker)
            pipe.set(keys.worker_started(worker), layout.started_at())
            pipe.hset(keys.heartbeat, worker, beat)
            pipe.set(keys.worker_stat("processed", worker), n * 10)
            if n % 2:
                pipe.set(keys.worker(worker), layout.working_on(
                    queue_name(n % 7), layout.encode_job(JOB, ARGS)))
        pipe.execute()


def fill_tracked(resque: Resque, sizes: Sizes) -> None:
    """The records finished tracked jobs leave (``status=True``), each written as a worker's
    last write leaves it, with the script every status write runs (it also indexes the id),
    pipelined ``CHUNK`` at a time."""
    store, now = resque.statuses, time.time()
    for start in range(0, sizes.tracked, CHUNK):
        with resque.redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + CHUNK, sizes.tracked)):
                job_id = tracked_id(i)
                store.write(job_id, TRACKED_TTL, client=pipe, status=layout.STATUS_COMPLETED,
                            name=JOB, queue=queue_name(i % 7), worker=worker_id(i % 7),
                            payload=layout.encode_job(JOB, [i, *ARGS[1:]], job_id,
                                                      TRACKED_TTL),
                            enqueued_at=now - 2, started_at=now - 1, ended_at=now,
                            result=layout.encode(i))
            pipe.execute()


TRACKED_TTL = 86_400  # seconds a finished job's record is kept


# --- what a page or verb costs Redis -----------------------------------------------------------


@dataclass
class Cost:
    seconds: float
    commands: Counter[str]  # calls by command name (a script's inner commands included)
    sent: int  # bytes Redis sent to its clients

    @property
    def calls(self) -> int:
        return sum(self.commands.values())


def _counters(r: redis.Redis) -> tuple[Counter[str], int]:
    sent = int(r.info("stats")["total_net_output_bytes"])
    stats = r.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"])
                    for name, v in stats.items()}), sent


def _measure(r: redis.Redis, action: Callable[[], object]) -> Cost:
    before, sent = _counters(r)
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    after, sent_after = _counters(r)
    commands = after - before
    commands["info"] -= 2  # the two INFOs of the first reading
    return Cost(seconds, +commands, sent_after - sent)


def cost(r: redis.Redis, action: Callable[[], object]) -> Cost:
    """Run ``action`` alone against ``r``'s server and report what Redis did for it. The
    bytes of the INFO replies of the reading itself are measured with a no-op, and taken
    out."""
    reading = _measure(r, lambda: None).sent
    measured = _measure(r, action)
    measured.sent -= reading
    return measured


def worker_steps(resque: Resque, queue: str) -> Callable[[], object]:
    """A worker's per-job round trip, as its loop sends it: acknowledge the job it ran and
    reserve the next, from a queue as long as the farm's."""
    store = WorkerStore(resque.redis, resque.keys, "scale-probe:1:" + queue)
    steps = iter(range(1, 1_000_000))
    held: list[Reserved] = []

    def step() -> object:
        acks = Acks()
        for job in held:
            acks.add(Ack(ACK_OK), job)
        taken = store.step(acks, [queue], 1, time.time(), str(next(steps)))
        held[:] = taken.jobs
        return taken

    step()  # the first reserve: the probe measures the steady state, one job in flight
    return step


# --- every page and verb -----------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    name: str
    run: Callable[[], object]
    bulk: bool = False  # acts on every matching entry by design: grows with the data
    exact: bool = True  # False: a SCAN page, whose keys (so commands) depend on hashing


def _get(web: TestClient, path: str) -> Callable[[], object]:
    def run() -> object:
        response = web.get(path)
        if response.status_code != 200:
            raise AssertionError(f"GET {path}: {response.status_code}")
        return response
    return run


def pages(resque: Resque, web: TestClient, sizes: Sizes) -> list[Probe]:
    """Every dashboard page, at its first, middle and last page where it has pages."""
    admin = Admin(resque)
    middle = admin.failures.page(sizes.failures // 2, 1).entries[0].id
    worker = urllib.parse.quote(worker_id(3), safe="")
    last_queue = queue_name(sizes.queues - 1)
    per_queue = sizes.queued // sizes.queues
    paths = [
        "/", "/queues", f"/queues?start={sizes.queues - 20}", "/queues?sort=size",
        f"/queues/{last_queue}", f"/queues/{last_queue}?start={per_queue // 2}",
        f"/queues/{last_queue}?start={per_queue - 10}", "/working", "/workers",
        f"/workers?start={sizes.workers - 20}", "/workers?host=scale-host-3",
        f"/workers/{worker}", "/failed", f"/failed?start={sizes.failures // 2}",
        f"/failed?start={sizes.failures - 10}", "/failed?order=asc",
        f"/failed?class={JOB}", f"/failures/{urllib.parse.quote(str(middle), safe='')}",
        "/delayed", f"/delayed?start={sizes.delayed // sizes.per_timestamp - 20}",
        f"/delayed/{FIRST_TIMESTAMP + 1}", "/schedule", "/stats", "/stats/raw", "/stats/redis",
        "/stats/keys", "/stats/keys/failed", "/stats.txt", "/live.json",
        "/charts/throughput.svg", "/charts/depth.svg",
    ]
    if sizes.tracked:  # the Jobs tab: its first, middle and last page, a job's page (where
        # its search box redirects)
        paths += ["/jobs", f"/jobs?start={sizes.tracked // 2}",
                  f"/jobs?start={sizes.tracked - 10}", f"/jobs/{tracked_id(sizes.tracked // 2)}"]
    return [Probe(f"GET {path}", _get(web, path), exact=path != "/stats/keys")
            for path in paths]


def verbs(resque: Resque, sizes: Sizes) -> list[Probe]:
    """Every admin verb (the library call its CLI verb makes); from the first bulk one on,
    they empty what they act on."""
    admin = Admin(resque)
    delayed = resque.delayed
    failures = admin.failures
    middle = sizes.failures // 2
    last_queue = queue_name(sizes.queues - 1)
    per_queue = sizes.queued // sizes.queues
    schedules = Schedules(resque)
    config = {"cron": "*/5 * * * *", "class": JOB, "queue": queue_name(0), "args": ARGS}
    ids = iter(range(middle, middle + 100))
    ruby_bytes = Resque(resque.redis, namespace=resque.keys.namespace, job_ids=False)
    handle = resque.enqueue_at_with_queue(queue_name(1), FIRST_TIMESTAMP + 7, JOB, *ARGS)

    def cancel() -> bool:
        assert handle is not None
        return handle.cancel()

    def nth_failure() -> str:
        return str(failures.page(next(ids), 1).entries[0].id)

    probes = [
        Probe("enqueue (one job)", lambda: resque.enqueue_to(queue_name(0), JOB, *ARGS)),
        Probe("enqueue (one tracked job)", lambda: resque.enqueue_call(
            JOB, ARGS, {}, queue=queue_name(0), status=True)),
        Probe("enqueue's warning: workers serving the queue",
              lambda: admin.serving(queue_name(0))),
        Probe("job status (Job.fetch)",
              lambda: resque.statuses.get(tracked_id(sizes.tracked // 2))),
        Probe("worker step (acknowledge one, reserve one)", worker_steps(resque, last_queue)),
        Probe("queues", admin.queues),
        Probe("peek (first page)", lambda: admin.peek(last_queue, 0, 10)),
        Probe("peek (last page)", lambda: admin.peek(last_queue, per_queue - 10, 10)),
        Probe("workers", admin.workers),
        Probe("prune", lambda: admin.prune(300, force=True)),
        Probe("stats", admin.stats),
        Probe("pause", admin.pause),
        Probe("resume", admin.resume),
        Probe("failed count", failures.count),
        Probe("failed list (first page)", lambda: failures.page(0, 20)),
        Probe("failed list (middle page)", lambda: failures.page(middle, 20)),
        Probe("failed show", lambda: failures.get(nth_failure())),
        Probe("failed retry (one)", lambda: failures.requeue(nth_failure())),
        Probe("failed remove (one)", lambda: failures.remove(nth_failure())),
        Probe("delayed list", lambda: delayed.page(0, 20)),
        Probe("delayed queue-now (one timestamp)", lambda: delayed.queue_now(FIRST_TIMESTAMP)),
        # By args, Ruby finds a delayed job by its exact bytes: one script. A job we delayed
        # carries its id, so the same call also reads the schedule (the bulk probe below);
        # its handle's cancel() goes to its timestamp directly.
        Probe("delayed remove (one job; Ruby's bytes, job_ids=False)",
              lambda: ruby_bytes.remove_delayed_in_queue(JOB, queue_name(1), 1, *ARGS[1:])),
        Probe("delayed cancel (one job with an id, by its handle)", cancel),
        Probe("schedule set", lambda: schedules.set("scale", config)),
        Probe("schedule list", schedules.status),
        Probe("schedule remove", lambda: schedules.remove("scale")),
        Probe("record_sample (every worker, each 10 s)",
              lambda: record_sample(resque.redis, resque.keys, time.time() + 3600)),
        Probe("delayed list: its count of every delayed job", delayed.count_all_scheduled_jobs,
              bulk=True),
        # What /metrics and `resque metrics` read: its delayed-jobs gauge counts them all.
        Probe("metrics (/metrics, resque metrics): its count of every delayed job",
              lambda: read_snapshot(resque), bulk=True),
        Probe("delayed remove (by args: every timestamp read for copies with an id)",
              lambda: delayed.remove_delayed_in_queue(JOB, queue_name(3), 3, *ARGS[1:]),
              bulk=True),
        Probe("failed list --class (no match: reads all)",
              lambda: failures.page(0, 20, where=Filter(class_name="Nothing")), bulk=True),
        Probe("failed retry-all", lambda: failures.requeue_where(Filter()), bulk=True),
        Probe("failed clear-retried", failures.clear_retried, bulk=True),
        Probe("remove-queue", lambda: admin.remove_queue(queue_name(2))),
        Probe("failed clear", failures.clear),  # one DEL per list
    ]
    return probes
