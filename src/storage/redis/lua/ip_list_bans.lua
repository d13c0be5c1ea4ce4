-- IPs banned now, with their error counts.
-- KEYS: bans sorted set.
-- ARGV: now (0 = server clock), error-window key of an IP as prefix and
--       suffix around the IP, error window ms.
-- Returns a flat list {ip, banned-until ms, errors, ...}.
local now = clock_ms(ARGV[1])
local window = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms(now))
local banned = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ms(now), '+inf', 'WITHSCORES')
local out = {}
for i = 1, #banned, 2 do
  local ip = banned[i]
  local errors = window_read(ARGV[2] .. ip .. ARGV[3], now, window)
  out[#out + 1] = ip
  out[#out + 1] = tonumber(banned[i + 1])
  out[#out + 1] = errors
end
return out
