-- delayed_move: move due delayed jobs to their queues, one batch per call
-- (resque/scheduler/mover.py, move_due). Each call commits the batch the previous call
-- read, then reads the next one.
--
-- KEYS: [1] `delayed_queue_schedule`, [2] `queues`, [3] `failed`, [4] the master lock.
-- ARGV: [1] the lock value ('' = no fence), [2] the lock TTL;
--       [3] now (the largest due score), [4] how many items to read next (0 = none),
--       [5] only this ts ('' = any due one);
--       [6..10] prefixes of: `delayed:<ts>` keys, `delayed:<ts>` members,
--       `timestamps:<item>` keys, `queue:<q>` keys, wake channels;
--       [11] the ts read last time ('' = nothing to commit), [12] n, then n triples
--       (item, queue, payload): queue '' and payload '' drops the item (a hook said no);
--       queue '' and a payload pushes that failure record to `failed`.
-- Returns {status} or {status, next ts, next items}: status = items moved, -1 when the head
-- of the list changed since we read it (nothing moved), -2 when we are not the master
-- (nothing moved or read).
--
-- Atomic, and refusing before any write: (1) the master lock must hold our value (then it
-- is renewed), (2) the head of `delayed:<ts>` must still hold exactly the items we read;
-- only then are they pushed, trimmed off, and an empty timestamp cleaned up. A batch thus
-- moves entirely or not at all, and an item leaves its list once: a second mover (Ruby's
-- WATCH/MULTI or ours) that read the same items finds the list changed and moves nothing.
-- Python decodes items between two calls, since the JSON must be re-encoded byte for byte
-- as Ruby does, which Lua's cjson cannot.
if ARGV[1] ~= '' then
  if redis.call('GET', KEYS[4]) ~= ARGV[1] then return {-2} end
  redis.call('EXPIRE', KEYS[4], ARGV[2])
end
local status = 0
local ts = ARGV[11]
if ts ~= '' then
  local list = ARGV[6] .. ts
  local member = ARGV[7] .. ts
  local n = tonumber(ARGV[12])
  local same = true
  if n > 0 then
    local head = redis.call('LRANGE', list, 0, n - 1)
    if #head ~= n then same = false end
    for i = 1, #head do
      if head[i] ~= ARGV[10 + 3 * i] then same = false break end
    end
  end
  if not same then
    status = -1
  else
    local by_queue, order = {}, {}
    for i = 1, n do
      local item, queue, payload = ARGV[10 + 3 * i], ARGV[11 + 3 * i], ARGV[12 + 3 * i]
      redis.call('SREM', ARGV[8] .. item, member)
      if queue ~= '' then
        if not by_queue[queue] then by_queue[queue] = {} table.insert(order, queue) end
        table.insert(by_queue[queue], payload)
      elseif payload ~= '' then
        redis.call('RPUSH', KEYS[3], payload)
      end
    end
    -- one SADD, RPUSH and PUBLISH per queue; items keep their order within a queue
    for _, queue in ipairs(order) do
      local payloads = by_queue[queue]
      redis.call('SADD', KEYS[2], queue)
      for first = 1, #payloads, 1000 do
        local last = math.min(first + 999, #payloads)
        redis.call('RPUSH', ARGV[9] .. queue, unpack(payloads, first, last))
      end
      redis.call('PUBLISH', ARGV[10] .. queue, '')
    end
    if n > 0 then redis.call('LTRIM', list, n, -1) end
    if redis.call('LLEN', list) == 0 then
      redis.call('DEL', list)
      redis.call('ZREM', KEYS[1], ts)
    end
    status = n
  end
end
local fetch = tonumber(ARGV[4])
if fetch == 0 then return {status} end
local next_ts
if ARGV[5] ~= '' then
  if redis.call('EXISTS', ARGV[6] .. ARGV[5]) == 1 or redis.call('ZSCORE', KEYS[1], ARGV[5]) then
    next_ts = ARGV[5]
  end
else
  next_ts = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, 1)[1]
end
if not next_ts then return {status} end
return {status, next_ts, redis.call('LRANGE', ARGV[6] .. next_ts, 0, fetch - 1)}
