-- One endpoint's RPM and RPD windows: both are checked, and the request is
-- counted in both only when both have room (and ARGV[6] is 1; 0 only reads).
-- KEYS: rpm hash, rpd hash.
-- ARGV: now (0 = server clock), rpm limit, rpd limit (-1 = none),
--       rpm window ms, rpd window ms, consume.
-- Returns {admitted 1|0, wait ms, rpm count, rpd count}.
local now = clock_ms(ARGV[1])
local rpm_limit, rpd_limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local rpm_window, rpd_window = tonumber(ARGV[4]), tonumber(ARGV[5])
local rpm, rpm_live = window_read(KEYS[1], now, rpm_window)
local rpd, rpd_live = window_read(KEYS[2], now, rpd_window)
local wait = 0
if rpm_limit >= 0 and rpm >= rpm_limit then
  wait = math.max(wait, window_wait(rpm_live, rpm, now, rpm_window, rpm_limit))
end
if rpd_limit >= 0 and rpd >= rpd_limit then
  wait = math.max(wait, window_wait(rpd_live, rpd, now, rpd_window, rpd_limit))
end
if wait > 0 then
  return {0, wait, rpm, rpd}
end
if ARGV[6] == '1' then
  window_add(KEYS[1], now, rpm_window, 1, rpm_live)
  window_add(KEYS[2], now, rpd_window, 1, rpd_live)
  rpm, rpd = rpm + 1, rpd + 1
end
return {1, 0, rpm, rpd}
