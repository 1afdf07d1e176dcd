-- master_lock_acquire: take the scheduler master lock if it is free, renew it if it is ours
-- (resque/scheduler/lock.py). One round trip per poll, where Ruby sends two scripts.
--
-- KEYS: [1] the master lock, [2] (optional) our master's record, `scheduler:master`.
-- ARGV: [1] our value (`<host>:<pid>`), [2] the TTL in seconds.
-- Returns 1 if we are master (lock taken or renewed), 0 if another process holds it, 2 if we
-- renewed our lock but our record is missing (it lapsed during a pass longer than the TTL,
-- or was deleted): the caller writes it again.
--
-- Atomic: the GET and the EXPIRE cannot straddle another process's SET, so we never extend
-- a lock someone else took after ours lapsed. A lock held by someone else is left untouched.
-- The record is renewed with the lock, so a killed master's record lapses with its lock; a
-- lock just taken leaves the record alone (it is an earlier master's, and ours replaces it).
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  if KEYS[2] and redis.call('EXPIRE', KEYS[2], ARGV[2]) == 0 then return 2 end
  return 1
end
return 0
