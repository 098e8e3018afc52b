-- Delete the key only while it still holds this acquisition's value.
-- KEYS[1] = key, ARGV[1] = value. Returns 1 when deleted, 0 otherwise.
-- pcall: a key of another type (GET fails with WRONGTYPE) is simply not ours.
if redis.pcall("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
