-- May this user start a request? Checks, in the in-process order, the
-- concurrency cap, RPM, TPM (tokens used in the last minute plus tokens
-- reserved by running requests) and each matching token quota (used in the
-- period plus reserved). When all pass, counts the request and reserves its
-- estimated tokens under ARGV[6] for ARGV[7] ms (a crashed instance's
-- reservations lapse then).
-- KEYS: rpm window, tpm window, reservations sorted set, then per quota:
--       used counter, reservations sorted set.
-- ARGV: now (0 = server clock), rpm, tpm, max concurrent (-1 = none),
--       estimate, reservation member "<id>:<tokens>", hold ms,
--       then per quota: its token limit.
-- Returns {0 admitted, in flight} | {1 rpm, wait ms} | {2 tpm, wait ms}
--       | {3 quota, quota index from 0} | {4 concurrency, max}.
local now = clock_ms(ARGV[1])
local MINUTE = 60000
local rpm_limit, tpm_limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local max_concurrent, estimate = tonumber(ARGV[4]), tonumber(ARGV[5])
local member, reserved_until = ARGV[6], now + tonumber(ARGV[7])
local quotas = (#KEYS - 3) / 2

-- Drops lapsed reservations; returns the live tokens and how many there are.
local function reserved(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ms(now))
  local tokens, count = 0, 0
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    tokens = tokens + (tonumber(string.match(m, ':(%d+)$')) or 0)
    count = count + 1
  end
  return tokens, count
end

local reserved_tokens, in_flight = reserved(KEYS[3])
if max_concurrent >= 0 and in_flight >= max_concurrent then
  return {4, max_concurrent}
end
local requests, requests_live = window_read(KEYS[1], now, MINUTE)
if rpm_limit >= 0 and requests >= rpm_limit then
  return {1, window_wait(requests_live, requests, now, MINUTE, rpm_limit)}
end
if tpm_limit >= 0 then
  local tokens, tokens_live = window_read(KEYS[2], now, MINUTE)
  if tokens + reserved_tokens >= tpm_limit then
    local below = math.max(tpm_limit - reserved_tokens, 1)
    return {2, window_wait(tokens_live, tokens, now, MINUTE, below)}
  end
end
for i = 1, quotas do
  local used = tonumber(redis.call('GET', KEYS[2 + 2 * i]) or '0')
  local held = reserved(KEYS[3 + 2 * i])
  if used + held >= tonumber(ARGV[7 + i]) then
    return {3, i - 1}
  end
end
window_add(KEYS[1], now, MINUTE, 1, requests_live)
local function hold(key)
  redis.call('ZADD', key, ms(reserved_until), member)
  if redis.call('PTTL', key) < reserved_until - now then
    redis.call('PEXPIRE', key, ms(reserved_until - now))
  end
end
hold(KEYS[3])
for i = 1, quotas do
  hold(KEYS[3 + 2 * i])
end
return {0, in_flight + 1}
