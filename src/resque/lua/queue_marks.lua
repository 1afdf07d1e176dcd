-- queue_marks: how old each queue's oldest job is, estimated from marks (resque/prometheus/
-- ages.py), one round trip per scrape.
--
-- A Resque payload carries no enqueue time ({"class","args"} only; adding a key would break
-- Ruby's byte-exact dequeue), so each scrape marks jobs it sees: the item at the tail of a
-- queue, with the time it was seen and its position. A job at the tail at time t was pushed
-- at or before t, and every job ahead of it earlier still; so while a marked job is in the
-- queue, the head is at least (now - t) old. The age returned is that of the oldest mark
-- still in the queue: a lower bound, within about one scrape interval of the truth. Marks
-- are found again with LPOS, searching no further than where the mark was last seen (plus
-- `slack` jobs pushed back at the head by stopped workers); a mark whose job is gone, or that
-- now matches two items (a job enqueued twice with the same arguments), is dropped, so
-- copies make the age read younger, never older. With no mark left the head is marked "now".
--
-- KEYS: [1] the hash `metrics:queue_marks` (queue name -> JSON [[seen, item, position], ...]).
-- ARGV: [1] the queue key prefix, [2] the most marks kept per queue, [3] the largest item
--       marked (bytes), [4] '1' to save the marks ('0': a read-only dashboard, nothing is
--       written), [5] slack, [6..] queue names.
-- Marks of queues not named are deleted; the hash expires a day after the last scrape.
-- Returns one string per queue: its age in seconds ('0.000' when empty, or when its jobs are
-- too large to mark), or '' when its key is not a list.
--
-- Atomic: the lengths, LPOS positions and new marks all describe the same moment, and two
-- scrapers (a dashboard and `resque metrics`) take turns on the same marks.
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local limit, largest, save, slack = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1',
  tonumber(ARGV[5])

local function read_marks(queue)
  local raw = redis.call('HGET', KEYS[1], queue)
  local ok, marks = pcall(cjson.decode, raw or '[]')
  if not ok or type(marks) ~= 'table' then return {} end
  local valid = {}
  for _, mark in ipairs(marks) do
    if type(mark) == 'table' and type(mark[1]) == 'number' and type(mark[2]) == 'string'
        and type(mark[3]) == 'number' then
      valid[#valid + 1] = mark
    end
  end
  return valid
end

local function drop_gone(key, marks)
  while #marks > 0 do
    local mark = marks[1]
    local found = redis.call('LPOS', key, mark[2], 'COUNT', 2,
      'MAXLEN', math.floor(mark[3]) + 1 + slack)
    if #found == 1 then
      mark[3] = found[1]
      return
    end
    table.remove(marks, 1)
  end
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
  drop_gone(key, marks)
  if #marks == 0 then
    local head = redis.call('LINDEX', key, 0)
    if head and #head <= largest then marks[1] = {now, head, 0} end
  end
  local tail = redis.call('LINDEX', key, -1)
  if tail and #tail <= largest and (#marks == 0 or marks[#marks][2] ~= tail) then
    marks[#marks + 1] = {now, tail, length - 1}
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
for i = 6, #ARGV do
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
