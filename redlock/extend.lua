-- Reset the time to live of the lock's keys, all or none: only when every
-- key still holds this acquisition's value.
-- KEYS = the lock's keys, ARGV[1] = value, ARGV[2] = ttl in milliseconds.
-- Returns 1 when extended, 0 otherwise.
-- pcall: a key of another type (GET fails with WRONGTYPE) is simply not ours.
for _, key in ipairs(KEYS) do
  if redis.pcall("GET", key) ~= ARGV[1] then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call("PEXPIRE", key, ARGV[2])
end
return 1
