-- Counts a client error of this IP (with a weight); at the threshold the IP
-- is banned for one error window, unless it is banned already.
-- KEYS: the IP's error window hash, bans sorted set.
-- ARGV: now (0 = server clock), ip, weight, threshold, error window ms.
-- Returns 1 when this error banned the IP, else 0.
local now = clock_ms(ARGV[1])
local weight, threshold = tonumber(ARGV[3]), tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local total, live = window_read(KEYS[1], now, window)
window_add(KEYS[1], now, window, weight, live)
total = total + weight
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ms(now))
if total >= threshold and not redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  redis.call('ZADD', KEYS[2], ms(now + window), ARGV[2])
  return 1
end
return 0
