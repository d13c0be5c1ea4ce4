-- Is this IP banned, and has it room under the per-IP limit? Counts the
-- request when it has. Bans come first: a banned IP is not counted.
-- KEYS: bans sorted set (member ip, score banned-until ms), the IP's
--       request window hash.
-- ARGV: now (0 = server clock), ip, limit (-1 = off), interval ms.
-- Returns {1 allowed | 2 banned | 3 limited, retry ms}.
local now = clock_ms(ARGV[1])
local banned_until = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))
if banned_until then
  if banned_until > now then
    return {2, banned_until - now}
  end
  redis.call('ZREM', KEYS[1], ARGV[2])
end
local limit = tonumber(ARGV[3])
if limit >= 0 then
  local window = tonumber(ARGV[4])
  local total, live = window_read(KEYS[2], now, window)
  if total >= limit then
    return {3, window_wait(live, total, now, window, limit)}
  end
  window_add(KEYS[2], now, window, 1, live)
end
return {1, 0}
