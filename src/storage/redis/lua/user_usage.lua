-- A user's shared counters, read only: requests and tokens in the last
-- minute, requests in flight, reserved tokens, then per quota the tokens
-- used in its period.
-- KEYS: rpm window, tpm window, reservations sorted set, then per quota: used
--       counter.
-- ARGV: now (0 = server clock).
-- Returns {rpm, tpm, in flight, reserved tokens, used per quota...}.
local now = clock_ms(ARGV[1])
local MINUTE = 60000
local requests = window_read(KEYS[1], now, MINUTE)
local tokens = window_read(KEYS[2], now, MINUTE)
local live = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ms(now), '+inf')
local reserved = 0
for _, m in ipairs(live) do
  reserved = reserved + (tonumber(string.match(m, ':(%d+)$')) or 0)
end
local out = {requests, tokens, #live, reserved}
for i = 4, #KEYS do
  out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
return out
