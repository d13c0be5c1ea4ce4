-- The endpoint's keys still cooling down, forgetting the others.
-- KEYS: the endpoint's cooldown hash.
-- ARGV: now (0 = server clock).
-- Returns a flat list {key id, ms still to wait, ...}.
local now = clock_ms(ARGV[1])
local flat = redis.call('HGETALL', KEYS[1])
local out, done = {}, {}
for i = 1, #flat, 2 do
  local until_ms = tonumber(flat[i + 1])
  if until_ms > now then
    out[#out + 1] = flat[i]
    out[#out + 1] = until_ms - now
  else
    done[#done + 1] = flat[i]
  end
end
if #done > 0 then
  redis.call('HDEL', KEYS[1], unpack(done))
end
return out
