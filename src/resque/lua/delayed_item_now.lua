-- delayed_item_now: move every copy of one delayed item at one timestamp now, due or not
-- (the dashboard's per-item "queue now"; resque/scheduler/mover.py, queue_item_now).
-- Composed after push_lib.lua: reaching a queue is the client's push.
--
-- KEYS: [1] `delayed:<ts>`, [2] `timestamps:<item>`, [3] `delayed_queue_schedule`,
--       [4] `queues`, [5] the target list: `queue:<q>`, or `failed`.
-- ARGV: [1] the item, byte for byte, [2] the member `delayed:<ts>`, [3] ts, [4] what to
--       push (the job payload, or a failure record), [5] the queue ('' = the target is
--       `failed`), [6] the queue's wake channel.
-- Returns how many copies were moved; 0 if the item is no longer there (already moved or
-- removed by someone else), and then nothing is written.
--
-- Atomic: the LREM that takes the item and the push that queues it cannot be separated, so
-- a copy is queued exactly once however many movers (Ruby's or ours) race for it.
local n = redis.call('LREM', KEYS[1], 0, ARGV[1])
if n == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[2])
if ARGV[5] ~= '' then
  local argv = {ARGV[5]}
  for i = 1, n do argv[i + 1] = ARGV[4] end
  push({KEYS[4], KEYS[5], ARGV[6]}, argv)
else
  for i = 1, n do redis.call('RPUSH', KEYS[5], ARGV[4]) end
end
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[3])
end
return n
