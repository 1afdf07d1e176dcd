-- delayed_remove: remove every copy of one delayed item from every timestamp it waits at
-- (resque/scheduler/delayed.py, remove_delayed).
--
-- KEYS: [1] `timestamps:<item>`, the set of `delayed:<ts>` members the item waits at.
-- ARGV: [1] the item, byte for byte, [2] the namespace prefix that turns a member into its
--       list key.
-- Returns how many copies were removed.
--
-- Atomic: the mover cannot take an item between our read of its timestamps and its removal.
-- Like Ruby, it leaves the `delayed_queue_schedule` member: the mover drops an empty
-- timestamp when it falls due.
local removed = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  removed = removed + redis.call('LREM', ARGV[2] .. member, 0, ARGV[1])
  redis.call('SREM', KEYS[1], member)
end
return removed
