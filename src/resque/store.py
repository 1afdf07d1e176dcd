"""Every Redis operation a worker performs, with its cost in round trips.

The per-job path is one round trip: the ``STEP`` script finishes the previous job
(acknowledge, count, record a failure) and reserves the next one. Reserving is one atomic
step: the job moves from ``queue:<q>`` into this worker's in-flight list and the Ruby
"working on" record is written in the same script, so no crash window can lose it.
Ruby and Perl see exactly what a Ruby worker writes; the in-flight list is ours alone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from resque import layout
from resque.failure import RedisFailure, RedisTarget

log = logging.getLogger("resque.worker")

# Ack modes of the STEP script: what happened to the job this worker had in flight.
ACK_OK = "ok"  # performed (or skipped by a hook): processed +1
ACK_FAILED = "failed"  # raised: failure record, processed +1, failed +1 (Ruby's counting)
ACK_DIRTY = "dirty"  # its process died: failure record, processed +1, failed untouched
ACK_REQUEUE = "requeue"  # stopped by a shutdown: back to the head of its queue, not counted

# KEYS: 1 worker record, 2 in-flight list, 3 stat:processed, 4 stat:processed:<id>,
#       5 stat:failed, 6 stat:failed:<id>, 7 failure list, 8 failed_queues set,
#       9 pause-all-workers, 10.. queue lists (in priority order)
# ARGV: 1 jobs finished (taken off the head of the in-flight list and counted processed),
#       2 of those that raised (counted failed), 3 jobs after them to requeue at the head of
#       their queues (stopped by a shutdown), 4 failed_queues member ('' = none),
#       5 failure records, as one JSON array ('' = none), 6 jobs to reserve (0 = none),
#       7 working-on template, 8 run_at (JSON), 9 unreadable payload, 10 queue-key prefix,
#       11 step token (a number, increasing per worker; '' = unchecked), 12 token of the last
#       entry acknowledged ('' = unchecked), then per queue: name, name as JSON
# Returns false, 'paused', or {queue, k, k names of queue keys that are not lists, jobs...}.
# The worker record is deleted when the in-flight list empties and set for the first job of
# a new batch, so it exists exactly while the worker holds a job.
#
# Acknowledging checks that the in-flight list is as this worker left it: the entry at
# done + requeue - 1 carries the token of the last job acknowledged (one LINDEX). If not, the
# step reached Redis twice (its reply lost after a client-side timeout and the first copy
# run late), or Redis lost writes (a failover, a crash): the jobs are then settled by token
# instead. This batch's entries up to that token are finished (or requeued); entries of
# older steps go back to their queues (at least once: they may be jobs this worker finished
# whose acknowledgement Redis lost, or jobs a late copy of an old step reserved that the
# worker never saw); anything else stays. A step no newer than the newest reservation reserves
# nothing (it returns what it reserved the first time). A reserving step finds the list
# empty once it has acknowledged, since the worker holds nothing else then (one LINDEX);
# entries still there are older jobs whose acknowledgement Redis lost, and go back to their
# queues, so an idle worker does not keep them until it exits. A queue key holding another type is
# skipped (LPOP through pcall: nothing was written before it fails) and named in the reply.
STEP_SCRIPT = """
local done, failed, requeue = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local records, token, acked = ARGV[5], ARGV[11], ARGV[12]
local settle = done + requeue
if records ~= '' then
  local kind = redis.call('TYPE', KEYS[7])['ok']
  if kind ~= 'list' and kind ~= 'none' then
    return redis.error_reply('NOTNOW ' .. KEYS[7] .. ' holds a ' .. kind ..
      ', not a list: failure records cannot be written there, so the jobs stay in flight')
  end
end
if settle > 0 and acked ~= '' then
  local last = redis.call('LINDEX', KEYS[2], settle - 1)
  local suffix = ',"' .. acked .. '"]'
  if not last or string.sub(last, -#suffix) ~= suffix then
    local step = tonumber(string.match(acked, '^(%d+):'))
    local kept, back, found = {}, {}, 0
    for _, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
      local s, j = string.match(entry, ',"(%d+):(%d+)"%]$')
      s, j = tonumber(s), tonumber(j)
      if s and s == step and j <= settle then
        if j <= done then found = found + 1 else back[#back + 1] = entry end
      elseif s and s < step then
        back[#back + 1] = entry
      else
        kept[#kept + 1] = entry
      end
    end
    for i = #back, 1, -1 do
      local pair = cjson.decode(back[i])
      redis.call('LPUSH', ARGV[10] .. pair[1], pair[2])
    end
    redis.call('DEL', KEYS[2])
    for i = 1, #kept, 1000 do
      redis.call('RPUSH', KEYS[2], unpack(kept, i, math.min(i + 999, #kept)))
    end
    if #kept == 0 then redis.call('DEL', KEYS[1]) end
    if found < done then failed, records = 0, '' end
    done, requeue, settle = found, 0, 0
  end
end
if requeue > 0 then
  local entries = redis.call('LRANGE', KEYS[2], done, done + requeue - 1)
  for i = #entries, 1, -1 do
    local entry = cjson.decode(entries[i])
    redis.call('LPUSH', ARGV[10] .. entry[1], entry[2])
  end
end
if settle > 0 then
  redis.call('LTRIM', KEYS[2], settle, -1)
  if redis.call('LLEN', KEYS[2]) == 0 then redis.call('DEL', KEYS[1]) end
end
if done > 0 then
  redis.pcall('INCRBY', KEYS[3], done)
  redis.pcall('INCRBY', KEYS[4], done)
end
if failed > 0 then
  redis.pcall('INCRBY', KEYS[5], failed)
  redis.pcall('INCRBY', KEYS[6], failed)
end
if records ~= '' then
  redis.call('RPUSH', KEYS[7], unpack(cjson.decode(records)))
  if ARGV[4] ~= '' then redis.pcall('SADD', KEYS[8], ARGV[4]) end
end
local want = tonumber(ARGV[6])
if want == 0 then return false end
local tail = token ~= '' and redis.call('LINDEX', KEYS[2], -1)
if tail then
  local newest = tonumber(string.match(tail, ',"(%d+):%d+"%]$') or -1)
  if newest == tonumber(token) then
    local again = {}
    for _, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
      if string.match(entry, ',"' .. token .. ':%d+"%]$') then
        local pair = cjson.decode(entry)
        if #again == 0 then again = {pair[1], 0} end
        again[#again + 1] = pair[2]
      end
    end
    return again
  elseif newest > tonumber(token) then
    return false
  end
  local entries = redis.call('LRANGE', KEYS[2], 0, -1)
  for i = #entries, 1, -1 do
    local pair = cjson.decode(entries[i])
    redis.call('LPUSH', ARGV[10] .. pair[1], pair[2])
  end
  redis.call('DEL', KEYS[2], KEYS[1])
end
local pause = redis.pcall('GET', KEYS[9])
if type(pause) == 'string' and string.lower(string.match(pause, '^%s*(.-)%s*$')) == 'true' then
  return 'paused'
end
local bad = {}
for i = 10, #KEYS do
  local n = 13 + (i - 10) * 2
  local job = redis.pcall('LPOP', KEYS[i])
  if type(job) == 'table' then
    bad[#bad + 1] = ARGV[n]
  elseif job then
    local taken = {ARGV[n], #bad}
    for b = 1, #bad do taken[#taken + 1] = bad[b] end
    taken[#taken + 1] = job
    redis.call('RPUSH', KEYS[2], cjson.encode({ARGV[n], job, token .. ':1'}))
    local ok, decoded = pcall(cjson.decode, job)
    local shown = job
    if not ok or type(decoded) ~= 'table' then shown = ARGV[9] end
    redis.call('SET', KEYS[1], string.format(ARGV[7], ARGV[n + 1], ARGV[8], shown))
    for j = 2, want do
      job = redis.call('LPOP', KEYS[i])
      if not job then break end
      redis.call('RPUSH', KEYS[2], cjson.encode({ARGV[n], job, token .. ':' .. j}))
      taken[#taken + 1] = job
    end
    return taken
  end
end
if #bad > 0 then
  local report = {'', #bad}
  for b = 1, #bad do report[#report + 1] = bad[b] end
  return report
end
return false
"""

# Recovery of a dead (or exiting) worker, atomic so that two pruners cannot both act.
# KEYS: 1 worker record, 2 in-flight list, 3 workers set, 4 heartbeat hash,
#       5 in-flight owners set, 6 queues set, 7 failure list, 8 failed_queues set,
#       9.. other per-worker keys
# ARGV: 1 worker id, 2 queue-key prefix, 3 expected worker record ('' = any),
#       4 failure record for a job found only in the worker record ('' = none),
#       5 failed_queues member ('' = none)
# In-flight entries go back to the head of their queues, in their original order. When the
# worker record is gone but entries remain, whoever unregistered the worker (a Ruby or Perl
# pruner) already recorded the first entry as failed, so only the rest are requeued.
RECOVER_SCRIPT = """
local record = redis.call('GET', KEYS[1])
if ARGV[3] ~= '' and record ~= ARGV[3] then return {-1, 0, false} end
local entries = redis.call('LRANGE', KEYS[2], 0, -1)
local first = 1
if not record then first = 2 end
local targets = {}
for i = #entries, first, -1 do
  local pair = cjson.decode(entries[i])
  targets[#targets + 1] = {ARGV[2] .. pair[1], pair[2], pair[1]}
end
local fail = #entries == 0 and record and ARGV[4] ~= ''
if fail then targets[#targets + 1] = {KEYS[7]} end
for _, target in ipairs(targets) do
  local kind = redis.call('TYPE', target[1])['ok']
  if kind ~= 'list' and kind ~= 'none' then
    return redis.error_reply('NOTNOW ' .. target[1] .. ' holds a ' .. kind ..
      ', not a list: the jobs of ' .. ARGV[1] .. ' stay where they are')
  end
end
local requeued = 0
for _, target in ipairs(targets) do
  if target[2] then
    redis.call('LPUSH', target[1], target[2])
    redis.pcall('SADD', KEYS[6], target[3])
    requeued = requeued + 1
  end
end
local failed = 0
if fail then
  redis.call('RPUSH', KEYS[7], ARGV[4])
  if ARGV[5] ~= '' then redis.pcall('SADD', KEYS[8], ARGV[5]) end
  failed = 1
end
redis.call('DEL', KEYS[1], KEYS[2])
for i = 9, #KEYS do redis.call('DEL', KEYS[i]) end
-- The shared registry may hold anything (another tool's bug): never stop half-way on it.
redis.pcall('SREM', KEYS[3], ARGV[1])
redis.pcall('HDEL', KEYS[4], ARGV[1])
redis.pcall('SREM', KEYS[5], ARGV[1])
return {requeued, failed, record or false}
"""


# Fail one in-flight entry instead of requeueing it (a job that keeps killing its workers).
# KEYS: 1 in-flight list, 2 failure list, 3 failed_queues set
# ARGV: 1 the entry, 2 failure record, 3 failed_queues member ('' = none)
FAIL_ENTRY_SCRIPT = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then redis.call('SADD', KEYS[3], ARGV[3]) end
return 1
"""

RECOVERY_MEMORY = 7 * 24 * 3600  # how long a requeue is remembered against a payload


@dataclass(frozen=True)
class Reserved:
    """A job taken from ``queue``: the raw bytes exactly as they were queued."""

    queue: str
    raw: bytes
    token: str = ""  # the step that reserved it, also stored in its in-flight entry


@dataclass(frozen=True)
class Ack:
    """How one job ended; ``failure`` is its failure record (failed and dirty)."""

    mode: str
    failure: str = ""
    failure_queue: str = ""  # redis_multi_queue: the job's queue, whose <q>_failed list gets it


@dataclass
class Acks:
    """What the next step reports for the jobs at the head of the in-flight list, in order:
    ``done`` finished ones (``failed`` of them raised), then ``requeue`` stopped ones."""

    done: int = 0
    failed: int = 0
    requeue: int = 0
    records: list[str] = field(default_factory=list)
    queue: str = ""
    last_token: str | None = None  # the last entry covered: gone once the step has run

    def add(self, ack: Ack, job: Reserved) -> None:
        if ack.mode == ACK_REQUEUE:
            self.requeue += 1
        else:
            if self.requeue:
                raise ValueError("a finished job cannot follow a requeued one")
            self.done += 1
            self.failed += ack.mode == ACK_FAILED
            if ack.failure:
                self.records.append(ack.failure)
                self.queue = ack.failure_queue or job.queue
        self.last_token = job.token

    def __bool__(self) -> bool:
        return bool(self.done or self.requeue)


PAUSED = object()
NOT_RUN = object()
# The reply code of a script that refused before writing anything, because a key it must
# write holds another type: the jobs stay in flight; the worker reports it and tries again.
NOT_NOW = "NOTNOW"


def _entry(raw: bytes | str) -> tuple[str, bytes, str]:
    """An in-flight entry ``[queue, payload, token]`` (older entries have no token)."""
    value = layout.decode(raw)
    queue, payload = value[0], value[1]
    token = value[2] if len(value) > 2 else ""
    return queue, payload.encode("utf-8", "surrogateescape"), token


class WorkerStore:
    """The Redis side of one worker: registration, heartbeat, reserve/ack, recovery."""

    def __init__(self, client: redis.Redis, keys: layout.Keys, worker_id: str) -> None:
        self.redis = client
        self.keys = keys
        self.worker_id = worker_id
        # Where failure records go (a backend's ``redis_target``): pure, no round trip.
        self.failure_target: Callable[[layout.Keys, str], RedisTarget | None] = (
            RedisFailure().redis_target
        )
        self._step = client.register_script(STEP_SCRIPT)
        self._recover = client.register_script(RECOVER_SCRIPT)
        self._fail_entry = client.register_script(FAIL_ENTRY_SCRIPT)
        self._fixed_keys = [
            keys.worker(worker_id),
            keys.inflight(worker_id),
            keys.stat("processed"),
            keys.worker_stat("processed", worker_id),
            keys.stat("failed"),
            keys.worker_stat("failed", worker_id),
            keys.failed,
            keys.failed_queues,
            keys.pause,
        ]
        self._queue_args: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        self._run_at_second = -1
        self._reported_bad: set[str] = set()
        self._run_at = ""

    # --- one round trip per job ---------------------------------------------------------

    def step(
        self,
        acks: Acks | None,
        queues: Sequence[str],
        reserve: int = 1,
        now: float = 0.0,
        token: str = "",
    ) -> list[Reserved] | object:
        """Finish the jobs in flight and reserve up to ``reserve`` more from the first queue
        that has any: one script, one round trip.

        Returns the reserved jobs (possibly none) or ``PAUSED`` when ``pause-all-workers`` is
        set. ``token`` names this step (a number, increasing per worker) so that
        ``step_outcome`` can tell, after a lost reply, whether the script ran, and so that the
        script can refuse to act twice (see ``STEP_SCRIPT``). A queue key that holds another
        type than a list is skipped and logged once; nothing in it is touched.
        """
        queue_keys, queue_args = self._queue_arguments(tuple(queues))
        keys = self._fixed_keys + queue_keys
        records, failed_member = "", ""
        if acks and acks.records:
            target = self.failure_target(self.keys, acks.queue)
            if target is not None:
                keys[6] = target.key
                records, failed_member = layout.encode(acks.records), target.failed_queues_member
        args: list[Any] = [
            acks.done if acks else 0,
            acks.failed if acks else 0,
            acks.requeue if acks else 0,
            failed_member,
            records,
            reserve,
            layout.WORKING_ON_TEMPLATE,
            self._run_at_json(now),
            layout.UNREADABLE_PAYLOAD,
            self.keys.queue(""),
            token,
            (acks.last_token or "") if acks else "",
            *queue_args,
        ]
        result = self._step(keys=keys, args=args)
        if result == b"paused":
            return PAUSED
        if not result:
            return []
        queue, bad = layout.text(result[0]), int(result[1])
        if bad:
            self._report_bad_queues([layout.text(name) for name in result[2 : 2 + bad]])
        jobs = result[2 + bad :]
        return [Reserved(queue, raw, f"{token}:{i}") for i, raw in enumerate(jobs, 1)]

    def _report_bad_queues(self, names: list[str]) -> None:
        for name in names:
            if name not in self._reported_bad:
                self._reported_bad.add(name)
                log.error("%s holds a value that is not a list: queue %r is skipped, and "
                          "nothing in it is touched; inspect it with TYPE and remove or fix it",
                          self.keys.queue(name), name)

    def step_outcome(self, token: str, acked_token: str | None) -> list[Reserved] | object:
        """After a step whose reply was lost: what did it do? One round trip (``LRANGE``).

        Returns the jobs it reserved (possibly none), or ``NOT_RUN``.
        """
        key = self.keys.inflight(self.worker_id)
        entries = [_entry(raw) for raw in self.redis.lrange(key, 0, -1)]
        mine = [Reserved(q, raw, t) for q, raw, t in entries if t.startswith(token + ":")]
        if mine:
            return mine
        if acked_token is not None and all(t != acked_token for _, _, t in entries):
            return []  # the acknowledgement went through and nothing was reserved
        return NOT_RUN

    def _queue_arguments(self, queues: tuple[str, ...]) -> tuple[list[str], list[str]]:
        cached = self._queue_args.get(queues)
        if cached is None:
            queue_keys = [self.keys.queue(q) for q in queues]
            queue_args = [part for q in queues for part in (q, layout.encode(q))]
            cached = self._queue_args[queues] = (queue_keys, queue_args)
            if len(self._queue_args) > 64:  # wildcard workers see changing lists
                self._queue_args.clear()
        return cached

    def _run_at_json(self, now: float) -> str:
        second = int(now)
        if second != self._run_at_second:
            self._run_at_second = second
            self._run_at = layout.encode(layout.run_at(second))
        return self._run_at

    # --- lifecycle ----------------------------------------------------------------------

    def register(self, started: str) -> None:
        """Ruby's ``register_worker`` (SADD + SET started) plus our in-flight owner entry."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(self.keys.workers, self.worker_id)
            pipe.set(self.keys.worker_started(self.worker_id), started)
            pipe.sadd(self.keys.inflight_workers, self.worker_id)
            pipe.execute()

    def is_registered(self) -> bool:
        return bool(self.redis.sismember(self.keys.workers, self.worker_id))

    def heartbeat(self, clear: bool = False) -> None:
        """Write Redis server time as the heartbeat (two round trips, once a minute)."""
        seconds, _ = self.redis.time()
        if clear:
            self.redis.hdel(self.keys.heartbeat, self.worker_id)
        self.redis.hset(self.keys.heartbeat, self.worker_id, layout.heartbeat_at(seconds))

    def unregister(self) -> int:
        """Remove every key of this worker; anything still in flight is requeued first."""
        requeued, _ = self.recover(self.worker_id)
        return requeued

    def recover(
        self,
        worker: str,
        expected_record: bytes | None = None,
        failure: str = "",
        failure_queue: str = "",
    ) -> tuple[int, bytes | None]:
        """Unregister ``worker`` atomically, requeueing its in-flight jobs at their heads.

        ``expected_record`` makes it a compare-and-act: if the worker record changed meanwhile
        nothing happens and ``(-1, None)`` is returned. ``failure`` is recorded when the worker
        had a job in its record but no in-flight list (a Ruby or Perl worker).
        Returns ``(jobs requeued or failed, the worker record that was there)``.
        """
        keys = self.keys
        target = self.failure_target(keys, failure_queue) if failure else None
        result = self._recover(
            keys=[
                keys.worker(worker),
                keys.inflight(worker),
                keys.workers,
                keys.heartbeat,
                keys.inflight_workers,
                keys.queues,
                target.key if target else keys.failed,
                keys.failed_queues,
                keys.worker_started(worker),
                keys.worker_stat("processed", worker),
                keys.worker_stat("failed", worker),
            ],
            args=[
                worker,
                keys.queue(""),
                expected_record or b"",
                failure if target else "",
                target.failed_queues_member if target else "",
            ],
        )
        if int(result[0]) < 0:
            return -1, None
        return int(result[0]) + int(result[1]), result[2] or None

    def inflight_entries(self, worker: str) -> list[tuple[bytes, str, bytes]]:
        """A worker's in-flight list as ``(entry, queue, payload)``."""
        raws: list[Any] = self.redis.lrange(self.keys.inflight(worker), 0, -1)
        return [(raw, *_entry(raw)[:2]) for raw in raws]

    def count_recoveries(self, payloads: Sequence[bytes]) -> list[int]:
        """Count one more requeue of each payload (by digest); returns the new counts."""
        with self.redis.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.hincrby(self.keys.recovered, hashlib.sha1(payload).hexdigest(), 1)
            pipe.expire(self.keys.recovered, RECOVERY_MEMORY)
            counts = pipe.execute()
        return [int(count) for count in counts[:-1]]

    def fail_entry(self, worker: str, entry: Any, failure: str, queue: str) -> bool:
        """Move one in-flight entry to the failure list, atomically; False if it was gone."""
        target = self.failure_target(self.keys, queue)
        if target is None:
            return bool(self.redis.lrem(self.keys.inflight(worker), 1, entry))
        done = self._fail_entry(
            keys=[self.keys.inflight(worker), target.key, self.keys.failed_queues],
            args=[entry, failure, target.failed_queues_member],
        )
        return bool(done)

    # --- reading the farm, for pruning --------------------------------------------------

    def acquire_prune_lock(self, ttl: int) -> bool:
        """Ruby's lock: ``SET pruning_dead_workers_in_progress <id> NX EX ttl``."""
        return bool(self.redis.set(self.keys.prune_lock, self.worker_id, nx=True, ex=ttl))

    def farm(self) -> tuple[set[str], dict[str, str], set[str], float]:
        """Registered ids, heartbeats, in-flight owners and Redis time: one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(self.keys.workers)
            pipe.hgetall(self.keys.heartbeat)
            pipe.smembers(self.keys.inflight_workers)
            pipe.time()
            workers, beats, owners, (seconds, micros) = pipe.execute()
        return (
            {layout.text(w) for w in workers},
            {layout.text(k): layout.text(v) for k, v in beats.items()},
            {layout.text(w) for w in owners},
            seconds + micros / 1e6,
        )

    def worker_record(self, worker: str) -> bytes | None:
        value: Any = self.redis.get(self.keys.worker(worker))
        return value if value else None

    def queue_names(self) -> list[str]:
        return sorted(layout.text(q) for q in self.redis.smembers(self.keys.queues))
