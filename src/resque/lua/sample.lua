-- sample.lua: take this time bucket's sample of the farm's counters for the dashboard's
-- charts, unless some process already did.
--
-- KEYS  1 recent samples (sorted set)  2 history samples (sorted set)  3 stat:processed
--       4 stat:failed  5 queues set  6 workers set  7 failure list  8 failed_queues set
-- ARGV  1 now, in seconds ('' = Redis TIME)  2 queue-key prefix  3 worker-key prefix
--       4 failure-list prefix  5 recent bucket  6 recent retention  7 history bucket
--       8 history retention (seconds)  9 how many of the longest queues to keep
--       10 the sample template (string.format: t, processed, failed, failures, pending,
--       workers, working, top queues as JSON)
-- Returns the number of tiers written: 0 when every tier already has this bucket's sample.
--
-- Atomic, as one script: the check "this bucket has no sample yet" and the write are one
-- step, so however many workers and dashboards call it, each bucket gets one sample. It reads
-- every queue, worker and failure list (LLEN, MGET; no SCAN). Queue, worker and failure-list
-- keys are built from the prefixes layout.Keys gives. Refusal: a counter or set of another
-- type fails the script before its first write (the ZADDs come last), so nothing is written.
local now = tonumber(ARGV[1])
if not now then now = tonumber(redis.call('TIME')[1]) end
now = math.floor(now)
local due = {}
for i = 0, 1 do
  local key, bucket, keep = KEYS[1 + i], tonumber(ARGV[5 + 2 * i]), tonumber(ARGV[6 + 2 * i])
  local start = now - (now % bucket)
  if redis.call('ZCOUNT', key, start, start) == 0 then
    due[#due + 1] = {key, start, keep}
  end
end
if #due == 0 then return 0 end
local function number(value)
  return math.floor(tonumber(value or '0') or 0)
end
local processed, failed = number(redis.call('GET', KEYS[3])), number(redis.call('GET', KEYS[4]))
local pending, lengths = 0, {}
for _, queue in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local length = redis.call('LLEN', ARGV[2] .. queue)
  pending = pending + length
  if length > 0 then lengths[#lengths + 1] = {queue, length} end
end
table.sort(lengths, function(a, b) return a[2] > b[2] end)
local top = {}
for i = 1, math.min(#lengths, tonumber(ARGV[9])) do top[i] = cjson.encode(lengths[i]) end
local workers = redis.call('SMEMBERS', KEYS[6])
local working = 0
for first = 1, #workers, 500 do
  local names = {}
  for i = first, math.min(first + 499, #workers) do names[#names + 1] = ARGV[3] .. workers[i] end
  for _, value in ipairs(redis.call('MGET', unpack(names))) do
    if value and value ~= '' then working = working + 1 end
  end
end
local failures = redis.call('LLEN', KEYS[7])
for _, name in ipairs(redis.call('SMEMBERS', KEYS[8])) do
  if ARGV[4] .. name ~= KEYS[7] then failures = failures + redis.call('LLEN', ARGV[4] .. name) end
end
local sample = string.format(ARGV[10], now, processed, failed, failures, pending, #workers,
  working, '[' .. table.concat(top, ',') .. ']')
for _, tier in ipairs(due) do
  redis.call('ZADD', tier[1], tier[2], sample)
  redis.call('ZREMRANGEBYSCORE', tier[1], '-inf', '(' .. (now - tier[3]))
  redis.call('EXPIRE', tier[1], tier[3])
end
return #due
