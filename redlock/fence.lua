-- Raise the key's fencing counter to the token just given out, only while
-- this acquisition still holds the key. A client gives out a token once
-- this has succeeded on a majority of the masters, and the next
-- acquisition's SET reaches a majority too, so at least one of the masters
-- it reads the counter from (acquire.lua) has this token or a later one:
-- tokens only grow. Never lowers the counter; the counter never expires.
-- KEYS[1] = lock key, KEYS[2] = fencing counter key
-- ARGV[1] = value, ARGV[2] = token
-- Returns 1 when the key still held value (the counter is now >= token), 0
-- otherwise, or the error of a GET (see get.lua).
local v, err = get(KEYS[1])
if err then
  return err
elseif v ~= ARGV[1] then
  return 0
end
local have = tonumber(redis.call("GET", KEYS[2])) or 0
if have < tonumber(ARGV[2]) then
  redis.call("SET", KEYS[2], ARGV[2])
end
return 1
