-- Reset the key's time to live only while it still holds this acquisition's
-- value. KEYS[1] = key, ARGV[1] = value, ARGV[2] = ttl in milliseconds.
-- Returns 1 when extended, 0 otherwise.
-- pcall: a key of another type (GET fails with WRONGTYPE) is simply not ours.
if redis.pcall("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
