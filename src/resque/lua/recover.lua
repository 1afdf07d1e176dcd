-- recover.lua: unregister a worker (dead, or exiting) and give its jobs back.
--
-- KEYS  1 worker record  2 in-flight list  3 workers set  4 heartbeat hash
--       5 in-flight owners set  6 queues set  7 failure list  8 failed_queues set
--       9.. the worker's other keys (started, per-worker stats): deleted
-- ARGV  1 worker id  2 queue-key prefix  3 the worker record expected ('' = any)
--       4 failure record for a job found only in the worker record ('' = none)
--       5 failed_queues member ('' = none)
-- Returns {requeued, failed (0 or 1), the worker record that was there or false}, or
--       {-1, 0, false} when the worker record is not the one expected (nothing written).
--
-- Atomic, as one script, so two pruners (or a pruner and the exiting worker) cannot both act:
-- with ARGV 3 it is a compare-and-act on the worker record, and whoever comes second finds
-- the keys gone. In-flight entries go back to the head of their queues in their original
-- order. When the worker record is gone but entries remain, whoever unregistered the worker
-- (a Ruby or Perl pruner) already recorded the first entry as failed, so only the rest are
-- requeued. A worker with a record and no in-flight list (Ruby, Perl) has its job failed
-- with ARGV 4, as Ruby's pruner does.
--
-- Refusals, before anything is written: a queue or failure list of another type than a list
-- fails with NOTNOW, and every key stays as it was. The shared registry (workers set,
-- heartbeat hash, owners set) may hold anything another tool wrote: those writes go through
-- pcall, so they never stop the script half-way.
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
redis.pcall('SREM', KEYS[3], ARGV[1])
redis.pcall('HDEL', KEYS[4], ARGV[1])
redis.pcall('SREM', KEYS[5], ARGV[1])
return {requeued, failed, record or false}
