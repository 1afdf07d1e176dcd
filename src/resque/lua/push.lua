-- push: enqueue jobs on one queue (the client's enqueue, push and enqueue_many), one round
-- trip. Composed after push_lib.lua, which holds the code and its atomicity argument.
--
-- KEYS: [1] the `queues` set, [2] the list `queue:<q>`, [3] the queue's wake channel.
-- ARGV: [1] the queue name, [2..] the job payloads.
-- Returns 1. Refuses nothing itself: a key of the wrong type makes Redis fail the script at
-- the first write (SADD), before anything was written.
return push(KEYS, ARGV)
