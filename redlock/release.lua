-- Delete the keys that still hold this acquisition's value, and only those.
-- KEYS = the lock's keys (one, or several for a lock on a set of keys),
-- ARGV[1] = value. Returns 1 when every key held it (all are deleted now),
-- 0 otherwise.
-- GET goes through pcall so that a key of another type (WRONGTYPE) is
-- simply not ours; any other error (an ACL that denies GET, say) is
-- returned as the script's error, never read as "not ours".
local all = 1
for _, key in ipairs(KEYS) do
  local v = redis.pcall("GET", key)
  if type(v) == "table" and v.err and string.sub(v.err, 1, 9) ~= "WRONGTYPE" then
    return v
  end
  if v == ARGV[1] then
    redis.call("DEL", key)
  else
    all = 0
  end
end
return all
