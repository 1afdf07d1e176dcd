-- durations_add: add a worker's job duration counts to the farm's histograms
-- (resque/durations.py, DurationRecorder.flush), one round trip every few seconds.
--
-- KEYS: [1] the hash `metrics:durations`.
-- ARGV: [1] the most fields the hash may hold, [2] its time to live in seconds, then one
--       group per (queue, class) series: the number of fields n, then n pairs of field and
--       increment. The first field of a group is always the series' `sum_us`.
-- Returns the number of series dropped because the hash was full.
--
-- Atomic: a series is added whole or not at all, so its buckets, sum and failures always
-- agree; a full hash (a worker on thousands of queues, say) takes no new series, but the
-- series it has keep counting (and may pass the limit by the buckets they start using). Increments only: several workers flushing at once add up.
local key, limit = KEYS[1], tonumber(ARGV[1])
local size = redis.call('HLEN', key)
local dropped = 0
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local known = redis.call('HEXISTS', key, ARGV[i + 1]) == 1
  if known or size + n <= limit then
    for j = i + 1, i + 2 * n, 2 do
      if redis.call('HEXISTS', key, ARGV[j]) == 0 then size = size + 1 end
      redis.call('HINCRBY', key, ARGV[j], ARGV[j + 1])
    end
  else
    dropped = dropped + 1
  end
  i = i + 1 + 2 * n
end
redis.call('EXPIRE', key, ARGV[2])
return dropped
