-- retry.lua: turn a failed attempt into the next one: settle the job's in-flight entry, count
-- it, and queue the retry, delayed in resque-scheduler's layout (our scheduler or Ruby's moves
-- it when due) or, due now, at the tail of its queue. Composed after push_lib.lua.
--
-- KEYS  1 in-flight list  2 worker record  3 stat:processed  4 stat:processed:<id>
--       5 stat:failed  6 stat:failed:<id>  7 retry key  8 failure-<retry key>
--       9 retries:due (ours)  10 delayed_queue_schedule  11 delayed:<ts>
--       12 timestamps:<item>  13 queues set  14 queue:<q>  15 the queue's wake channel
--       16 failure list  17 failed_queues set
-- ARGV  1 the entry's token  2 the failed attempt, 0-based: the retry key's value while the
--       retry is pending (resque-retry's)  3 seconds the retry key is kept
--       4 failure record kept in KEYS[8] ('' = none)  5 seconds KEYS[8] is kept
--       6 due time, epoch seconds  7 the delayed item ('' = due now: back to the queue's
--       tail at once)  8 member delayed:<ts>
--       9 queue name  10 the job payload  11 '1' if it counts as failed (it raised)
--       12 failure record for the failure list ('' = none)  13 failed_queues member
-- Returns 1 when the retry is queued; 0 when the entry is no longer in flight (a pruner
--   requeued it, or this call ran already and its reply was lost): nothing is written, so
--   the worker may send it again after an outage.
--
-- Atomic, as one script: the job leaves the in-flight list in the same step as its retry is
-- queued, so a worker killed at any moment leaves it exactly once, either in flight (its
-- recovery requeues it) or queued as the retry; never both, never neither. Counted as Ruby
-- counts a failure (processed and failed), with no failure record unless asked for: the
-- last attempt's record is written by the worker's step, as for any failure.
--
-- Refusals, before anything is written: a key the retry must write (the delayed:<ts> list,
-- timestamps:<item> set and schedule, or the queues set and queue; the failure list when it
-- gets a record) holding another type fails with REFUSED, and the worker fails the job
-- plainly, with its record (not NOTNOW: waiting would not change the key). The stat counters, index and failed_queues set are counts and indexes
-- only (pcall): a bad one never stops a retry.
local function refuse_unless(key, wanted)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= wanted and kind ~= 'none' then
    return redis.error_reply('REFUSED ' .. key .. ' holds a ' .. kind .. ', not a ' .. wanted)
  end
end
local due, now = ARGV[6], ARGV[7] == ''
local refused
if now then
  refused = refuse_unless(KEYS[13], 'set') or refuse_unless(KEYS[14], 'list')
else
  refused = refuse_unless(KEYS[11], 'list') or refuse_unless(KEYS[12], 'set')
    or refuse_unless(KEYS[10], 'zset')
end
refused = refused or (ARGV[12] ~= '' and refuse_unless(KEYS[16], 'list'))
if refused then return refused end
local suffix = ',"' .. ARGV[1] .. '"]'
local entry
for _, candidate in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.sub(candidate, -#suffix) == suffix then entry = candidate break end
end
if not entry then return 0 end
redis.call('LREM', KEYS[1], 1, entry)
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
redis.pcall('INCR', KEYS[3])
redis.pcall('INCR', KEYS[4])
if ARGV[11] == '1' then
  redis.pcall('INCR', KEYS[5])
  redis.pcall('INCR', KEYS[6])
end
redis.call('SET', KEYS[7], ARGV[2], 'EX', ARGV[3])
if ARGV[4] ~= '' then redis.call('SET', KEYS[8], ARGV[4], 'EX', ARGV[5]) end
redis.pcall('ZADD', KEYS[9], due, KEYS[7])
-- Entries whose retry was removed by hand are never taken off by a worker: they lapse.
redis.pcall('ZREMRANGEBYSCORE', KEYS[9], '-inf', '(' .. (tonumber(due) - tonumber(ARGV[3])))
if now then
  push({KEYS[13], KEYS[14], KEYS[15]}, {ARGV[9], ARGV[10]})
else
  redis.call('RPUSH', KEYS[11], ARGV[7])
  redis.call('SADD', KEYS[12], ARGV[8])
  redis.call('ZADD', KEYS[10], due, due)
end
if ARGV[12] ~= '' then
  redis.call('RPUSH', KEYS[16], ARGV[12])
  if ARGV[13] ~= '' then redis.pcall('SADD', KEYS[17], ARGV[13]) end
end
return 1
