-- retry_begin.lua: count the attempt a worker starts of a job that has a retry policy
-- (policies/retry_store.py). One round trip, for such jobs only.
--
-- KEYS  1 the retry key (resque-retry:<class>:<sha1 of the args>)  2 retries:due (ours)
-- ARGV  1 seconds the retry key is kept from now
-- Returns the 0-based number of this attempt, resque-retry's retry_attempt: 0 when no earlier
--   attempt failed, -1 when the key holds something that is not a count.
--
-- Atomic, as one script: the count, its expiry and the retry's leaving the index of pending
-- retries happen together, so a reader never sees a retry both pending and counted as started.
--
-- Refusals, before anything is written: no key (a first attempt: nothing to count, so a job
-- that succeeds at once costs no write), or a key that is not a count (the job runs as a
-- first attempt; the key is left for whoever wrote it).
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return 0 end
if kind ~= 'string' then return -1 end
local attempt = redis.pcall('INCR', KEYS[1])
if type(attempt) ~= 'number' then return -1 end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.pcall('ZREM', KEYS[2], KEYS[1])
return attempt
