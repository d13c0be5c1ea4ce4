-- Shared by every script (prepended to each): the clock and the sliding
-- window of limits::window::RateWindow, kept in a Redis hash whose fields are
-- bucket starts (ms since the epoch) and whose values are counts. A window
-- of W ms has buckets of W/60 ms, like the in-process one, so both backends
-- admit and refuse the same requests.

-- ARGV's clock in ms, or the Redis server's when it is 0 (one clock for
-- every instance).
local function clock_ms(arg)
  local given = tonumber(arg)
  if given and given > 0 then
    return given
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function ms(n)
  return string.format('%d', n)
end

-- Drops buckets that left the window; returns the total and the live
-- buckets, oldest first, as {start, count} pairs.
local function window_read(key, now, window_ms)
  local flat = redis.call('HGETALL', key)
  local total, live, expired = 0, {}, {}
  for i = 1, #flat, 2 do
    local start, count = tonumber(flat[i]), tonumber(flat[i + 1])
    if start + window_ms <= now then
      expired[#expired + 1] = flat[i]
    else
      total = total + count
      live[#live + 1] = {start, count}
    end
  end
  if #expired > 0 then
    redis.call('HDEL', key, unpack(expired))
  end
  table.sort(live, function(a, b) return a[1] < b[1] end)
  return total, live
end

-- ms until fewer than `limit` events remain (RateWindow::time_until_below).
local function window_wait(live, total, now, window_ms, limit)
  local remaining = total
  if remaining < limit then
    return 0
  end
  for _, bucket in ipairs(live) do
    remaining = remaining - bucket[2]
    if remaining < limit then
      return math.max(bucket[1] + window_ms - now, 1)
    end
  end
  return window_ms
end

-- Adds n events now; the hash expires when its newest bucket leaves.
local function window_add(key, now, window_ms, n, live)
  local bucket_ms = math.floor(window_ms / 60)
  local start = now - (now % bucket_ms)
  -- A clock that went back folds into the newest bucket, as in RateWindow.
  if #live > 0 and live[#live][1] > start then
    start = live[#live][1]
  end
  redis.call('HINCRBY', key, ms(start), n)
  redis.call('PEXPIRE', key, window_ms)
end
