-- An upstream key cools down for ARGV[2] ms from now (Redis's clock, one for
-- every instance): stored in the endpoint's hash (key id → until ms) unless
-- a later cooldown is there already, then announced on the channel so every
-- instance's key pool learns it at once.
-- KEYS: the endpoint's cooldown hash.
-- ARGV: key id, duration ms, now (0 = server clock), channel, message.
-- Returns 1 when stored and announced, 0 when a later one was known.
local now = clock_ms(ARGV[3])
local duration = tonumber(ARGV[2])
local until_ms = now + duration
local known = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if duration <= 0 or (known and known >= until_ms) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ms(until_ms))
if redis.call('PTTL', KEYS[1]) < duration then
  redis.call('PEXPIRE', KEYS[1], ms(duration))
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
