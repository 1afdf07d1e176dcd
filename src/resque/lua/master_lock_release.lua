-- master_lock_release: delete the scheduler master lock if it is still ours
-- (compare-and-delete; resque/scheduler/lock.py).
--
-- KEYS: [1] the master lock.
-- ARGV: [1] our value (`<host>:<pid>`).
-- Returns 1 if the lock was ours and is deleted, 0 otherwise.
--
-- Atomic: between the GET and the DEL nobody can take the lock, so a scheduler whose lock
-- lapsed and was taken over never deletes the new master's lock.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
