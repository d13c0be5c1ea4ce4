-- A request of this user ended: drops its reservation and charges the tokens
-- it really used to the TPM window and to each quota it was admitted under
-- (0 tokens = a plain release).
-- KEYS: tpm window, reservations sorted set, then per quota: used counter,
--       reservations sorted set.
-- ARGV: now (0 = server clock), reservation member, tokens used,
--       then per quota: counter ttl ms (0 = keep).
-- Returns 1 when the reservation was still held, else 0.
local now = clock_ms(ARGV[1])
local MINUTE = 60000
local member, used = ARGV[2], tonumber(ARGV[3])
local quotas = (#KEYS - 2) / 2
local held = redis.call('ZREM', KEYS[2], member)
if used > 0 then
  local _, live = window_read(KEYS[1], now, MINUTE)
  window_add(KEYS[1], now, MINUTE, used, live)
end
for i = 1, quotas do
  redis.call('ZREM', KEYS[2 + 2 * i], member)
  if used > 0 then
    redis.call('INCRBY', KEYS[1 + 2 * i], used)
    local ttl = tonumber(ARGV[3 + i])
    if ttl > 0 then
      redis.call('PEXPIRE', KEYS[1 + 2 * i], ttl)
    end
  end
end
return held
