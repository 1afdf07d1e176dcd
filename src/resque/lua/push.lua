-- push: enqueue jobs on one queue (the client's enqueue, push and enqueue_many), one round
-- trip. Composed after push_lib.lua, which holds the code and its atomicity argument.
--
-- KEYS: [1] the `queues` set, [2] the list `queue:<q>`, [3] the queue's wake channel.
-- ARGV: [1] the queue name, [2..] the job payloads.
-- Returns 1. Checks nothing itself: a key of the wrong type fails the command that touches
-- it. A `queues` that is not a set fails the first write, so nothing is written; a
-- `queue:<q>` that is not a list fails the RPUSH after the SADD, which stays (Redis does not
-- roll a script back), as after Ruby's own SADD + RPUSH; no job is queued, nobody is woken.
return push(KEYS, ARGV)
