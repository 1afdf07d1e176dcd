-- limit_hold: renew a running job's lease on its place under a limit
-- (resque/policies/guard.py, every third of the lease while the job runs).
--
-- KEYS  1 `limits:<name>:running`
-- ARGV  1 the job's member  2 the lease, ms
-- Returns 1 when renewed, 0 when the member is gone (its lease had ended: nothing written).
--
-- Compare and act in one script: a lease that already ended is not brought back, since its
-- place may have been taken by another job meanwhile.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
