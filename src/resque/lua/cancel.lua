-- cancel: remove one queued job by its exact bytes and mark it cancelled, one round trip.
-- Composed after status_lib.lua.
--
-- KEYS  1 status:<id>  2 _statuses  3 the queue's list, queue:<q>
-- ARGV  1..8 as write_status's (status_lib.lua)  9 the job's payload, byte for byte
-- Returns the status written ('killed'), or false when the job was not in the queue (a worker
--       took it, or it was removed already): nothing is written then.
--
-- Atomic, as one script: the job leaves its queue and its record says cancelled together;
-- a worker that took the job first makes LREM find nothing, so a started job is never marked
-- cancelled. LREM with count 1 and the job's id in the bytes removes exactly this job.
if redis.call('LREM', KEYS[3], 1, ARGV[9]) == 0 then return false end
return write_status(KEYS, ARGV)
