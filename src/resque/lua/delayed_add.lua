-- delayed_add: delay one job to a timestamp, in resque-scheduler's layout
-- (resque/scheduler/delayed.py, enqueue_at).
--
-- KEYS: [1] `delayed:<ts>`, [2] `timestamps:<item>`, [3] `delayed_queue_schedule`.
-- ARGV: [1] the item (`{"class","args","queue"}`, byte-exact as Ruby), [2] the member
--       `delayed:<ts>`, [3] ts (whole Unix seconds).
-- Returns 1.
--
-- Ruby sends these three writes as three round trips; in one script the mover can never see
-- the timestamp scheduled without its item, nor the item without its `timestamps:` entry.
-- A `delayed:<ts>` that is not a list fails the first write: then nothing is written.
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[3])
return 1
