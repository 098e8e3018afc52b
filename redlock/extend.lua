-- Reset the time to live of the lock's keys, all or none: only when every
-- key still holds this acquisition's value.
-- KEYS = the lock's keys, ARGV[1] = value, ARGV[2] = ttl in milliseconds.
-- Returns 1 when extended, 0 otherwise, or the error of a GET (see get.lua).
for _, key in ipairs(KEYS) do
  local v, err = get(key)
  if err then
    return err
  elseif v ~= ARGV[1] then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call("PEXPIRE", key, ARGV[2])
end
return 1
