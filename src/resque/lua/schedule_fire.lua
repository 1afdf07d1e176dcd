-- schedule_fire: enqueue one tick of a recurring schedule, at most once
-- (resque/scheduler/recurring.py). Composed after push_lib.lua: the tick's job reaches its
-- queue by the client's push.
--
-- KEYS: [1] the master lock, [2] `scheduler:last_tick`, [3] `delayed:last_enqueued_at`,
--       [4] `queues`, [5] `queue:<q>`.
-- ARGV: [1] the lock value ('' = no fence), [2] the schedule's name, [3] the tick (Unix
--       seconds), [4] the `last_enqueued_at` text, [5] the queue, [6] the job payload,
--       [7] the queue's wake channel.
-- Returns 1 enqueued, 0 when this tick (or a later one) was enqueued already, -2 when we
-- are not the master; the last two write nothing.
--
-- Atomic: the lock check, the tick check, the tick record and the push cannot interleave
-- with another scheduler's, so a tick is enqueued at most once however many of ours run;
-- Ruby's last_enqueued_at is written with it, for resque-web's schedule tab.
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[2]))
if last and last >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
push({KEYS[4], KEYS[5], ARGV[7]}, {ARGV[5], ARGV[6]})
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
return 1
