-- Delete the keys that still hold this acquisition's value, and only those.
-- KEYS = the lock's keys (one, or several for a lock on a set of keys),
-- ARGV[1] = value. Returns 1 when every key held it (all are deleted now),
-- 0 otherwise, or the error of a GET (see get.lua).
local all = 1
for _, key in ipairs(KEYS) do
  local v, err = get(key)
  if err then
    return err
  elseif v == ARGV[1] then
    redis.call("DEL", key)
  else
    all = 0
  end
end
return all
