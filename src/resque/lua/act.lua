-- act: retry or remove failure entries of one list, each addressed by its index and bytes
-- (resque/failure/operations.py). Composed after push_lib.lua: a retry is the client's push.
--
-- KEYS: [1] the failure list, [2] the `queues` set, then for each target queue its list
--       `queue:<q>` and its wake channel.
-- ARGV: [1] a sentinel unique to this call, then 7 per entry: hint index, raw bytes, new
--       record ('' = leave as is), remove ('1'/'0'), queue name ('' = no push), job
--       payload, the KEYS index of the queue's list.
-- Returns {removed, then per entry its position, or -1 if it was gone}.
--
-- Each entry is found at its hint if that still holds exactly its bytes, else at LPOS of
-- them (entries with identical bytes are interchangeable), else it is gone and left alone.
-- Atomic: nobody sees a record marked retried without its job pushed, nor the sentinel.
-- Removal marks entries with the sentinel and removes them with one LREM at the end, from
-- whichever end of the list is nearer, so positions do not shift while the batch runs.
local sentinel = ARGV[1]
local result = {0}
local length = redis.call('LLEN', KEYS[1])
local marked, lowest, highest = 0, nil, nil
for i = 2, #ARGV, 7 do
  local hint, raw = tonumber(ARGV[i]), ARGV[i + 1]
  -- at: the index we access by; negative counts from the tail, so LINDEX and LSET walk the
  -- list from its nearer end. pos: the same place counted from the head.
  local at = false
  if hint >= 0 and hint < length then
    if hint > length / 2 then at = hint - length else at = hint end
    if redis.call('LINDEX', KEYS[1], at) ~= raw then at = false end
  end
  if not at then
    at = redis.call('LPOS', KEYS[1], raw)
    if at and at > length / 2 then at = at - length end
  end
  if at then
    local pos = at
    if pos < 0 then pos = pos + length end
    if ARGV[i + 3] == '1' then
      redis.call('LSET', KEYS[1], at, sentinel)
      marked = marked + 1
      if lowest == nil or pos < lowest then lowest = pos end
      if highest == nil or pos > highest then highest = pos end
    elseif ARGV[i + 2] ~= '' then
      redis.call('LSET', KEYS[1], at, ARGV[i + 2])
    end
    if ARGV[i + 4] ~= '' then
      local k = tonumber(ARGV[i + 6])
      push({KEYS[2], KEYS[k], KEYS[k + 1]}, {ARGV[i + 4], ARGV[i + 5]})
    end
    result[#result + 1] = pos
  else
    result[#result + 1] = -1
  end
end
if marked > 0 then
  if length - lowest < highest then marked = -marked end
  result[1] = math.abs(redis.call('LREM', KEYS[1], marked, sentinel))
end
return result
