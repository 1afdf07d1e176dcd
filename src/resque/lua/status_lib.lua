-- status_lib: `write_status(keys, argv)`, the write of a tracked job's status record
-- (resque-status's layout), for scripts to compose.
--
-- keys  1 status:<id> (the record, JSON)  2 _statuses (the index: zset of ids)
-- argv  1 the job id  2 now (epoch seconds)  3 seconds the record is kept from now
--       4 the fields to set, one JSON object (user data in it, a result, is JSON text inside
--         a string, so that cjson never re-encodes its numbers)
--       5 the channel to publish the new status on  6 '' or the status the record must have
--       7 index horizon: ids last written before this epoch second leave the index
--       8 the most ids the index keeps (the oldest go first)
-- Returns the status written, or false when the record's status was not argv 6 (nothing
--       written).
--
-- The record is read, merged and written back inside one script: two writers (the worker
-- finishing, a client cancelling) each see what the other left, so a condition (cancel only
-- what is still queued) holds when acted on. Nothing grows for ever: the record expires
-- (argv 3); the index expires once nobody writes, and is trimmed on every write, by age and
-- by size. A record that is not a JSON object (another tool's) is replaced, never a failure.
local function write_status(keys, argv)
  local record = {}
  local current = redis.call('GET', keys[1])
  if current then
    local ok, decoded = pcall(cjson.decode, current)
    if ok and type(decoded) == 'table' then record = decoded end
  end
  if argv[6] ~= '' and record['status'] ~= argv[6] then return false end
  for key, value in pairs(cjson.decode(argv[4])) do record[key] = value end
  local now, horizon = tonumber(argv[2]), tonumber(argv[7])
  record['uuid'] = argv[1]
  record['time'] = math.floor(now)
  redis.call('SET', keys[1], cjson.encode(record), 'EX', argv[3])
  redis.call('ZADD', keys[2], now, argv[1])
  redis.call('ZREMRANGEBYSCORE', keys[2], '-inf', '(' .. horizon)
  redis.call('ZREMRANGEBYRANK', keys[2], 0, -tonumber(argv[8]) - 1)
  redis.call('EXPIRE', keys[2], math.floor(now - horizon))
  redis.call('PUBLISH', argv[5], record['status'] or '')
  return record['status'] or ''
end
