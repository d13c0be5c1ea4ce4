-- Lifts a ban and forgets the IP's errors and requests.
-- KEYS: bans sorted set, the IP's error window, the IP's request window.
-- ARGV: ip. Returns 1 when there was anything to forget.
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
removed = removed + redis.call('DEL', KEYS[2], KEYS[3])
if removed > 0 then
  return 1
end
return 0
