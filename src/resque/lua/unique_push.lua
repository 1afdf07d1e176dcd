-- unique_push: enqueue a unique job unless its lock is held, one round trip
-- (resque/policies/unique.py). Composed after push_lib.lua and status_lib.lua.
--
-- KEYS  1 the lock, `loners:queue:<q>:job:<digest>`  2 the `queues` set  3 `queue:<q>`
--       4 the queue's wake channel  5, 6 (a tracked job only) `status:<id>`, `_statuses`
-- ARGV  1 milliseconds the lock lives at most  2 the queue name  3 the payload
--       4.. (a tracked job only) status_lib's argv for its `queued` record
-- Returns false (queued, and the lock now holds the payload) or the value of the lock that
--       is held (nothing written).
--
-- Atomic: the lock is taken, the status recorded and the job pushed in one script, so a lock
-- never exists without its job nor a job without its lock, and two clients enqueueing the
-- same job at once queue it once. Refusal, before anything is written: the lock is held, by
-- any value (resque-loner's "1" too). A lock key of another type fails the GET: nothing is
-- written.
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
if #KEYS > 4 then
  write_status({KEYS[5], KEYS[6]}, {unpack(ARGV, 4)})
end
push({KEYS[2], KEYS[3], KEYS[4]}, {ARGV[2], ARGV[3]})
return false
