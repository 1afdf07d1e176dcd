-- fail_entry.lua: fail one in-flight entry instead of requeueing it (a job that keeps killing
-- the workers that run it).
--
-- KEYS  1 in-flight list  2 failure list  3 failed_queues set
-- ARGV  1 the entry, byte for byte  2 failure record  3 failed_queues member ('' = none)
-- Returns 1 when the entry was moved, 0 when it was no longer there (nothing written).
--
-- Atomic, as one script: the entry leaves the in-flight list and its failure record is
-- written together, and only if the entry is still there, so two pruners racing fail it at
-- most once, and never a job someone already requeued.
--
-- Refusal, before anything is written: a failure list of another type than a list fails with
-- NOTNOW and the entry stays in flight (a failed write after the LREM would lose the job).
-- The failed_queues set is an index only: a bad one never stops the script (pcall).
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'list' and kind ~= 'none' then
  return redis.error_reply('NOTNOW ' .. KEYS[2] .. ' holds a ' .. kind ..
    ', not a list: the entry stays in flight')
end
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then redis.pcall('SADD', KEYS[3], ARGV[3]) end
return 1
