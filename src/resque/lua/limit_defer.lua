-- limit_defer: move a job its limit refused from the worker's in-flight list to the delayed
-- schedule, in resque-scheduler's layout (resque/policies/guard.py).
--
-- KEYS  1 the worker's in-flight list  2 the worker record (Ruby's "working on")
--       3 `delayed:<ts>`  4 `timestamps:<item>`  5 `delayed_queue_schedule`
-- ARGV  1 the token of the job's in-flight entry  2 the delayed item (the payload with its
--       queue)  3 the member `delayed:<ts>`  4 ts (whole Unix seconds)
-- Returns 1 when moved, 0 when the entry is not in the list (nothing written).
--
-- Atomic: the job leaves the in-flight list and enters the schedule in one script, so a crash
-- can neither lose it nor leave it in both (a pruner would requeue the in-flight copy). The
-- worker then acknowledges nothing for it: its entry is gone. The schedule's three writes are
-- the ones `delayed_add.lua` makes. A worker record is deleted with the last entry, as the
-- step script does.
local suffix = ',"' .. ARGV[1] .. '"]'
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.sub(entry, -#suffix) == suffix then
    redis.call('LREM', KEYS[1], 1, entry)
    redis.call('RPUSH', KEYS[3], ARGV[2])
    redis.call('SADD', KEYS[4], ARGV[3])
    redis.call('ZADD', KEYS[5], ARGV[4], ARGV[4])
    if redis.call('LLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
    return 1
  end
end
return 0
