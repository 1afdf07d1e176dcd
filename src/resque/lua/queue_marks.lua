-- queue_marks: how old each queue's oldest job is, estimated from marks (resque/prometheus/
-- ages.py), one round trip per scrape.
--
-- A Resque payload carries no enqueue time ({"class","args"} only; adding a key would break
-- Ruby's byte-exact dequeue), so each scrape marks jobs it sees: the item at the tail of a
-- queue, with the time it was seen and its position. A job at the tail at time t was pushed
-- at or before t, and every job ahead of it earlier still; so while a marked job is in the
-- queue, the head is at least (now - t) old. The age returned is that of the oldest mark
-- still in the queue: a lower bound, within about one scrape interval of the truth. Marks
-- are found again by their bytes (see `locate` and `markable`); a mark whose job is gone is
-- dropped. With no mark left the head is marked "now". A job enqueued again with the same
-- bytes after a marked copy was taken can pass for it, making the age read older until that
-- copy is taken too.
--
-- KEYS: [1] the hash `metrics:queue_marks` (queue name -> JSON [[seen, item, position,
--       queue length then], ...]; position and length as of the last scrape that found it).
-- ARGV: [1] the queue key prefix, [2] the most marks kept per queue, [3] the largest item
--       marked (bytes), [4] '1' to save the marks ('0': a read-only dashboard, nothing is
--       written), [5] slack, [6] the window in which a marked item must be unique,
--       [7..] queue names.
-- Marks of queues not named are deleted; the hash expires a day after the last scrape.
-- Returns one string per queue: its age in seconds ('0.000' when empty, or when its jobs are
-- too large to mark), or '' when its key is not a list.
--
-- Atomic: the lengths, LPOS positions and new marks all describe the same moment, and two
-- scrapers (a dashboard and `resque metrics`) take turns on the same marks.
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local limit, largest, save, slack, window = tonumber(ARGV[2]), tonumber(ARGV[3]),
  ARGV[4] == '1', tonumber(ARGV[5]), tonumber(ARGV[6])

local function read_marks(queue)
  local raw = redis.call('HGET', KEYS[1], queue)
  local ok, marks = pcall(cjson.decode, raw or '[]')
  if not ok or type(marks) ~= 'table' then return {} end
  local valid = {}
  for _, mark in ipairs(marks) do
    if type(mark) == 'table' and type(mark[1]) == 'number' and type(mark[2]) == 'string'
        and type(mark[3]) == 'number' and type(mark[4]) == 'number' then
      valid[#valid + 1] = mark
    end
  end
  return valid
end

-- Where a mark's job is now, or nil. From whichever end it was nearer when last seen: pops
-- only bring it nearer the head, pushes only take it further from the tail, so finding a
-- mark costs about its distance from that end, not the queue's length. From the head it is
-- sought no further than where it was (plus `slack`): a copy further on was pushed later.
local function locate(key, mark, length)
  local position = math.floor(mark[3])
  if math.floor(mark[4]) - 1 - position < position then
    return redis.call('LPOS', key, mark[2], 'RANK', -1, 'MAXLEN', length)
  end
  return redis.call('LPOS', key, mark[2], 'MAXLEN', position + 1 + slack)
end

local function drop_gone(key, marks, length)
  while #marks > 0 do
    local position = locate(key, marks[1], length)
    if position then
      marks[1][3], marks[1][4] = position, length
      return
    end
    table.remove(marks, 1)
  end
end

-- An item is marked only if no copy of it lies among the `window` items at that end: queues
-- of identical jobs are not marked at all (their age reads 0), rather than read too old.
local function markable(key, item, rank)
  if not item or #item > largest then return false end
  return #redis.call('LPOS', key, item, 'RANK', rank, 'COUNT', 2, 'MAXLEN', window) == 1
end

-- Keep `limit` marks spread over time: drop the one whose neighbours are closest together.
local function thin(marks)
  while #marks > limit do
    local best, gap = 2, math.huge
    for i = 2, #marks - 1 do
      local width = marks[i + 1][1] - marks[i - 1][1]
      if width < gap then best, gap = i, width end
    end
    table.remove(marks, best)
  end
end

local function age_of(queue)
  local key = ARGV[1] .. queue
  local length = redis.pcall('LLEN', key)
  if type(length) == 'table' then return '' end
  if length == 0 then
    if save then redis.call('HDEL', KEYS[1], queue) end
    return '0.000'
  end
  local marks = read_marks(queue)
  drop_gone(key, marks, length)
  if #marks == 0 then
    local head = redis.call('LINDEX', key, 0)
    if markable(key, head, 1) then marks[1] = {now, head, 0, length} end
  end
  local tail = redis.call('LINDEX', key, -1)
  if (#marks == 0 or marks[#marks][2] ~= tail) and markable(key, tail, -1) then
    marks[#marks + 1] = {now, tail, length - 1, length}
  end
  thin(marks)
  if save then
    if #marks > 0 then redis.call('HSET', KEYS[1], queue, cjson.encode(marks))
    else redis.call('HDEL', KEYS[1], queue) end
  end
  if #marks == 0 then return '0.000' end
  return string.format('%.3f', now - marks[1][1])
end

local ages, asked = {}, {}
for i = 7, #ARGV do
  ages[#ages + 1] = age_of(ARGV[i])
  asked[ARGV[i]] = true
end
if save then  -- queues that left the `queues` set leave no marks behind
  for _, queue in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not asked[queue] then redis.call('HDEL', KEYS[1], queue) end
  end
  redis.call('EXPIRE', KEYS[1], 86400)
end
return ages
