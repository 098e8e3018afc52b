-- Reset the time to live of the lock's keys, all or none: only when every
-- key still holds this acquisition's value.
-- KEYS = the lock's keys, ARGV[1] = value, ARGV[2] = ttl in milliseconds.
-- Returns 1 when extended, 0 otherwise.
-- GET goes through pcall so that a key of another type (WRONGTYPE) is
-- simply not ours; any other error (an ACL that denies GET, say) is
-- returned as the script's error, never read as "not ours".
for _, key in ipairs(KEYS) do
  local v = redis.pcall("GET", key)
  if type(v) == "table" and v.err and string.sub(v.err, 1, 9) ~= "WRONGTYPE" then
    return v
  end
  if v ~= ARGV[1] then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call("PEXPIRE", key, ARGV[2])
end
return 1
