-- step.lua: finish the jobs a worker had in flight, then reserve its next ones. The worker's
-- only round trip per job (per batch, in process).
--
-- KEYS  1 worker record (Ruby's "working on")  2 in-flight list (ours alone)
--       3 stat:processed  4 stat:processed:<id>  5 stat:failed  6 stat:failed:<id>
--       7 failure list  8 failed_queues set  9 pause-all-workers
--       10 stopped hash (payload digest -> times requeued by a shutdown)
--       11.. the queue lists, in priority order
-- ARGV  1 jobs finished: taken off the head of the in-flight list and counted processed
--       2 how many of those raised: counted failed too (Ruby counts both)
--       3 jobs after them to requeue at the head of their queues (stopped by a shutdown)
--       4 failed_queues member ('' = none)  5 failure records, one JSON array ('' = none)
--       6 jobs to reserve (0 = none)  7 working-on template  8 run_at (JSON)
--       9 payload the worker record shows for an unreadable job  10 queue-key prefix
--       11 this step's token (a number, increasing per worker; '' = unchecked)
--       12 token of the last entry acknowledged ('' = unchecked)
--       13 seconds the stopped hash is kept after its last write
--       14 concurrent mode ('' = off): the jobs finished, in any order, as one JSON array of
--          [token, 1 if it raised else 0, failure record or ''] (ARGV 1-3 and 5 are unused)
--       15 concurrent mode: the worker record to show once they are acknowledged, when jobs
--          remain in flight (the oldest of them, which heads the list)
--       16.. per queue: its name, then its name as JSON
-- Returns false (nothing reserved), 'paused' (pause-all-workers is "true"), or
--       {queue, n, n names of queues whose key is not a list, jobs...}; queue is '' when no
--       job was found but bad queues were.
--
-- Atomic, as one script: a job leaves its queue, enters the in-flight list and is named in the
-- worker record in the same step, so no crash window can lose it. The worker record is
-- deleted when the in-flight list empties and set for the first job of a batch: it exists
-- exactly while the worker holds a job, as Ruby's does. A job requeued by a shutdown is
-- counted in the stopped hash in the same step, so the count never misses a requeue.
--
-- Concurrent mode (a worker running jobs on threads): jobs finish in any order, so each is
-- acknowledged by its token, wherever it is in the list, and the list keeps the jobs still
-- running. The worker record then shows the oldest of them, which heads the list: a pruner
-- that fails the record's job (Ruby's) and requeues the rest of the list (ours) handles each
-- job once. Acknowledging by token is idempotent: a token no longer in the list is not
-- counted again.
--
-- Refusals, before anything is written: a failure list of another type fails the step with
-- NOTNOW (the jobs stay in flight; the worker reports it and tries again). A queue key of
-- another type is skipped (LPOP through pcall fails without writing) and named in the reply.
--
-- Replays. Acknowledging checks that the in-flight list is as the worker left it: the entry
-- at done + requeue - 1 carries the token of the last job acknowledged (one LINDEX). If not,
-- this step reached Redis twice (its reply lost after a client-side timeout, the first copy
-- run late) or Redis lost writes (a failover, a crash), and the jobs are settled by token:
-- this batch's entries up to that token are finished (or requeued); entries of older steps
-- go back to their queues (at least once: they may be jobs whose acknowledgement Redis lost,
-- or jobs a late copy of an old step reserved that the worker never saw); anything else
-- stays. A step no newer than the newest reservation reserves nothing new: it returns what it
-- reserved the first time. A reserving step finds the list empty once it has acknowledged
-- (one LINDEX), since the worker holds nothing else then; entries still there are older jobs
-- whose acknowledgement Redis lost, and go back to their queues rather than wait for exit.
local done, failed, requeue = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local records, token, acked = ARGV[5], ARGV[11], ARGV[12]
local concurrent = ARGV[14] ~= ''
local finished = concurrent and cjson.decode(ARGV[14]) or {}
local settle = done + requeue
local finished_records = {}
local has_records = records ~= ''
for _, ack in ipairs(finished) do has_records = has_records or ack[3] ~= '' end
if has_records then
  local kind = redis.call('TYPE', KEYS[7])['ok']
  if kind ~= 'list' and kind ~= 'none' then
    return redis.error_reply('NOTNOW ' .. KEYS[7] .. ' holds a ' .. kind ..
      ', not a list: failure records cannot be written there, so the jobs stay in flight')
  end
end
if #finished > 0 then
  local by_token = {}
  for _, ack in ipairs(finished) do by_token[ack[1]] = ack end
  local found = {}
  for _, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    local ack = by_token[string.match(entry, ',"(%d+:%d+)"%]$') or '']
    if ack then
      redis.call('LREM', KEYS[2], 1, entry)
      found[#found + 1] = ack
    end
  end
  for _, ack in ipairs(found) do
    failed = failed + ack[2]
    if ack[3] ~= '' then finished_records[#finished_records + 1] = ack[3] end
  end
  done = #found
  if redis.call('LLEN', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[1])
  elseif ARGV[15] ~= '' then
    redis.call('SET', KEYS[1], ARGV[15])
  end
end
if settle > 0 and acked ~= '' and not concurrent then
  local last = redis.call('LINDEX', KEYS[2], settle - 1)
  local suffix = ',"' .. acked .. '"]'
  if not last or string.sub(last, -#suffix) ~= suffix then
    local step = tonumber(string.match(acked, '^(%d+):'))
    local kept, back, found = {}, {}, 0
    for _, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
      local s, j = string.match(entry, ',"(%d+):(%d+)"%]$')
      s, j = tonumber(s), tonumber(j)
      if s and s == step and j <= settle then
        if j <= done then found = found + 1 else back[#back + 1] = entry end
      elseif s and s < step then
        back[#back + 1] = entry
      else
        kept[#kept + 1] = entry
      end
    end
    for i = #back, 1, -1 do
      local pair = cjson.decode(back[i])
      redis.call('LPUSH', ARGV[10] .. pair[1], pair[2])
    end
    redis.call('DEL', KEYS[2])
    for i = 1, #kept, 1000 do
      redis.call('RPUSH', KEYS[2], unpack(kept, i, math.min(i + 999, #kept)))
    end
    if #kept == 0 then redis.call('DEL', KEYS[1]) end
    if found < done then failed, records = 0, '' end
    done, requeue, settle = found, 0, 0
  end
end
if requeue > 0 then
  local entries = redis.call('LRANGE', KEYS[2], done, done + requeue - 1)
  for i = #entries, 1, -1 do
    local entry = cjson.decode(entries[i])
    redis.call('LPUSH', ARGV[10] .. entry[1], entry[2])
    redis.pcall('HINCRBY', KEYS[10], redis.sha1hex(entry[2]), 1)
  end
  redis.pcall('EXPIRE', KEYS[10], ARGV[13])
end
if settle > 0 and not concurrent then
  redis.call('LTRIM', KEYS[2], settle, -1)
  if redis.call('LLEN', KEYS[2]) == 0 then redis.call('DEL', KEYS[1]) end
end
if done > 0 then
  redis.pcall('INCRBY', KEYS[3], done)
  redis.pcall('INCRBY', KEYS[4], done)
end
if failed > 0 then
  redis.pcall('INCRBY', KEYS[5], failed)
  redis.pcall('INCRBY', KEYS[6], failed)
end
if records ~= '' then finished_records = cjson.decode(records) end
if #finished_records > 0 then
  redis.call('RPUSH', KEYS[7], unpack(finished_records))
  if ARGV[4] ~= '' then redis.pcall('SADD', KEYS[8], ARGV[4]) end
end
local want = tonumber(ARGV[6])
if want == 0 then return false end
local tail = token ~= '' and redis.call('LINDEX', KEYS[2], -1)
if tail then
  local newest = tonumber(string.match(tail, ',"(%d+):%d+"%]$') or -1)
  if newest == tonumber(token) then
    local again = {}
    for _, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
      if string.match(entry, ',"' .. token .. ':%d+"%]$') then
        local pair = cjson.decode(entry)
        if #again == 0 then again = {pair[1], 0} end
        again[#again + 1] = pair[2]
      end
    end
    return again
  elseif newest > tonumber(token) then
    return false
  end
  if not concurrent then  -- a concurrent worker's older entries are jobs still running
    local entries = redis.call('LRANGE', KEYS[2], 0, -1)
    for i = #entries, 1, -1 do
      local pair = cjson.decode(entries[i])
      redis.call('LPUSH', ARGV[10] .. pair[1], pair[2])
    end
    redis.call('DEL', KEYS[2], KEYS[1])
  end
end
local pause = redis.pcall('GET', KEYS[9])
if type(pause) == 'string' and string.lower(string.match(pause, '^%s*(.-)%s*$')) == 'true' then
  return 'paused'
end
local bad = {}
for i = 11, #KEYS do
  local n = 16 + (i - 11) * 2
  local job = redis.pcall('LPOP', KEYS[i])
  if type(job) == 'table' then
    bad[#bad + 1] = ARGV[n]
  elseif job then
    local taken = {ARGV[n], #bad}
    for b = 1, #bad do taken[#taken + 1] = bad[b] end
    taken[#taken + 1] = job
    -- Concurrent: the record keeps showing the oldest job while others still run.
    local first = not concurrent or redis.call('LLEN', KEYS[2]) == 0
    redis.call('RPUSH', KEYS[2], cjson.encode({ARGV[n], job, token .. ':1'}))
    local ok, decoded = pcall(cjson.decode, job)
    local shown = job
    if not ok or type(decoded) ~= 'table' then shown = ARGV[9] end
    if first then
      redis.call('SET', KEYS[1], string.format(ARGV[7], ARGV[n + 1], ARGV[8], shown))
    end
    for j = 2, want do
      job = redis.call('LPOP', KEYS[i])
      if not job then break end
      redis.call('RPUSH', KEYS[2], cjson.encode({ARGV[n], job, token .. ':' .. j}))
      taken[#taken + 1] = job
    end
    return taken
  end
end
if #bad > 0 then
  local report = {'', #bad}
  for b = 1, #bad do report[#report + 1] = bad[b] end
  return report
end
return false
