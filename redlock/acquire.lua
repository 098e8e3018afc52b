-- SET NX PX, unless this master lost its data (a restart without
-- persistence, a flush) less than the restart delay ago. The marker key holds
-- the server time (ms) at which some client first found the dataset without
-- it; a dataset that survived keeps its marker, a lost one loses it.
-- KEYS[1] = lock key, KEYS[2] = marker key
-- ARGV[1] = value, ARGV[2] = ttl ms, ARGV[3] = restart delay ms
-- Returns 1 when set, 0 when the key is held, -N when the vote must not
-- count for N more milliseconds.
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local born = tonumber(redis.pcall("GET", KEYS[2]))
if born == nil then
  redis.call("SET", KEYS[2], now)
  born = now
end
local wait = tonumber(ARGV[3]) - (now - born)
if wait > 0 then
  return -wait
end
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  return 1
end
return 0
