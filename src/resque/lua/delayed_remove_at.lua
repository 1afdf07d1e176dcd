-- delayed_remove_at: remove every copy of one delayed item from one timestamp, and the
-- timestamp too once it is empty (resque/scheduler/delayed.py, remove_item_at).
--
-- KEYS: [1] `delayed:<ts>`, [2] `timestamps:<item>`, [3] `delayed_queue_schedule`.
-- ARGV: [1] the item, byte for byte, [2] the member `delayed:<ts>`, [3] ts.
-- Returns how many copies were removed (0 if the item was not there: nothing else changes
-- but the stale `timestamps:` member, which is dropped).
--
-- Atomic: the emptiness check and the cleanup see the list as our LREM left it, so a
-- timestamp is never dropped while an item another client just delayed waits in it.
redis.call('SREM', KEYS[2], ARGV[2])
local removed = redis.call('LREM', KEYS[1], 0, ARGV[1])
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[3])
end
return removed
