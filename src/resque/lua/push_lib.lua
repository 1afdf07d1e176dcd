-- push_lib: `push(keys, argv)`, the enqueue of jobs onto one queue, for scripts to compose.
--
-- keys: [1] the `queues` set, [2] the list `queue:<q>`, [3] the queue's wake channel.
-- argv: [1] the queue name, [2..] the job payloads, already encoded byte for byte as Ruby.
-- Returns 1.
--
-- Ruby's push is SADD queues + RPUSH queue:<q>. The PUBLISH wakes our idle workers that
-- subscribe to the queue; Ruby and Perl ignore it. Inside one script the three commands are
-- atomic: no worker sees the queue listed without its jobs, nor a job before its queue is
-- listed, and a script that calls push after checking something still holds what it checked.
local function push(keys, argv)
  redis.call('SADD', keys[1], argv[1])
  redis.call('RPUSH', keys[2], unpack(argv, 2))
  redis.call('PUBLISH', keys[3], '')
  return 1
end
