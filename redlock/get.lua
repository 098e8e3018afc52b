-- get is GET through pcall, for the compare-and-act scripts (release,
-- extend, fence), which it is put in front of: a key of another type
-- (WRONGTYPE) is simply not ours, and reads as nil; any other error (an ACL
-- that denies GET, say) comes back as the second result, for the script
-- to return as its own error: never read as "not ours".
local function get(key)
  local v = redis.pcall("GET", key)
  if type(v) == "table" and v.err then
    if string.sub(v.err, 1, 9) == "WRONGTYPE" then
      return nil
    end
    return nil, v
  end
  return v
end
