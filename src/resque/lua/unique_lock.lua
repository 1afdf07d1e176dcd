-- unique_lock: what a worker does with a unique job's lock as the job starts, runs and ends
-- (resque/policies/unique.py).
--
-- KEYS  1 the lock
-- ARGV  1 the action: 'start' (until="start": the job starts, the lock goes), 'hold'
--         (until="end": the lock is held for a lease from now, taken if it is free; renewing
--         the lease is holding it again), 'release' (the job ended: the lock goes),
--         'requeue' (the job went back to its queue: the lock lives ARGV 4 ms again)
--       2 the job's id ('' = the job has none: Ruby's scheduler rebuilt it without ours)
--       3 the payload (the value 'hold' writes)  4 milliseconds (the lease, or the ttl)
-- Returns 1 when it acted, 0 when the lock is another job's or gone (nothing written).
--
-- The lock is this job's when its value names the job's id; a job without an id cannot tell
-- and acts (while the lock holds, only it can hold it). Compare and act in one script: a job
-- whose lock expired never releases nor extends the lock a later duplicate took since.
local held = redis.call('GET', KEYS[1])
local action, id = ARGV[1], ARGV[2]
if held and id ~= '' and not string.find(held, '"id":"' .. id .. '"', 1, true) then
  return 0
end
if action == 'hold' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
elseif not held then
  return 0
elseif action == 'requeue' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('DEL', KEYS[1])
end
return 1
