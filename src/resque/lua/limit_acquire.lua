-- limit_acquire: take a place under a job's limit as it starts, or say how long to wait
-- (resque/policies/limits.py).
--
-- KEYS  1 `limits:<name>:running` (member per running job, scored by the ms its lease ends)
--       2 `limits:<name>:starts` (member per start, scored by its ms)
-- ARGV  1 this job's member (worker id and step token)  2 most jobs running at once (0 = no
--       cap)  3 the lease, ms  4 most starts per period (0 = no rate)  5 the period, ms
-- Returns 0 when the place is taken (a running member and a start recorded), -1 when the
--       jobs running are at the cap, or the ms until the oldest start leaves the period.
--
-- Atomic: the count and the take are one script, so N workers racing for the last place
-- take it once. The clock is Redis's (TIME): hosts whose clocks disagree share one window.
-- Refusals write nothing but the removal of what had expired already: running members whose
-- lease ended (their worker died without giving the place back) and starts older than the
-- period.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap, lease, rate, period = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= cap then return -1 end
end
if rate > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - period)
  if redis.call('ZCARD', KEYS[2]) >= rate then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + period - now)
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1] .. '@' .. now)
  redis.call('PEXPIRE', KEYS[2], period)
end
if cap > 0 then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease)
end
return 0
