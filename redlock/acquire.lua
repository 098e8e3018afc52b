-- SET NX PX, on one key or on a set of keys (all or none), with two
-- options.
--
-- Restart protection (ARGV[3] > 0): unless this master restarted, lost
-- its data, or took over another history (a replica promoted), less than
-- the restart delay ago: then its vote must not count, since a lock it
-- granted before may still be live on the other masters while this master
-- has forgotten it (or remembers an older copy of its data). Three signs
-- are checked, on the master's own clocks:
--   uptime: a restart of any kind (no persistence, RDB, AOF everysec ...);
--   a marker key, "<born>:<replid>", holding the server time at which some
--   client first found the dataset without it: a lost dataset without a
--   restart (FLUSHALL);
--   the replication ID recorded in the marker: a master whose ID differs
--   (a replica promoted by a failover, whose copy of the marker came from
--   the old master; or a restart, which always starts a new ID) has a new
--   history, which may lack the keys written just before it began, so its
--   marker starts again. A marker without an ID (written by an older
--   version) is kept and gets the current ID.
--
-- Fencing (ARGV[4] == "1"): the key's fencing counter (KEYS[3]) is read in
-- the same step as the SET, so that the client can give out a token above
-- every token given out before (see fence.lua).
--
-- KEYS = the lock's keys (one, or several: all are set or none), then the
-- marker key with the restart protection, then the fencing counter key (of
-- the first lock key) with fencing: a key not used is not named, as an ACL
-- checks every key a script is given
-- ARGV[1] = value, ARGV[2] = ttl ms, ARGV[3] = restart delay ms (0: off),
-- ARGV[4] = "1" to fence
-- Returns 0 when a key is held, -N when the vote must not count for N
-- more milliseconds, and otherwise 1 + the fencing counter (1 unfenced).
local delay = tonumber(ARGV[3])
local fence = ARGV[4] == "1"
local n = #KEYS
local counter
if fence then
  counter = KEYS[n]
  n = n - 1
end
if delay > 0 then
  local marker = KEYS[n]
  n = n - 1
  redis.replicate_commands() -- Redis 3.2 and 4: allow writes after TIME; a no-op since 5
  local t = redis.call("TIME")
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  -- One INFO for both sections where the server takes several (Redis 7);
  -- one each elsewhere.
  local info = redis.pcall("INFO", "server", "replication")
  if type(info) ~= "string" then
    info = redis.call("INFO", "server")
  end
  local uptime = tonumber(string.match(info, "uptime_in_seconds:(%d+)")) * 1000
  local replid = string.match(info, "master_replid:(%w+)")
  if replid == nil then
    replid = string.match(redis.call("INFO", "replication"), "master_replid:(%w+)") or ""
  end
  local born, seen = string.match(redis.call("GET", marker) or "", "^(%d+):?(%w*)$")
  born = tonumber(born)
  if born == nil or (seen ~= "" and seen ~= replid) then
    born = now
  end
  if seen ~= replid then
    redis.call("SET", marker, born .. ":" .. replid)
  end
  local wait = math.max(delay - (now - born), delay - uptime)
  if wait > 0 then
    return -wait
  end
end
for i = 1, n do
  if redis.call("EXISTS", KEYS[i]) == 1 then
    return 0
  end
end
-- The counter is read before anything is written: a script that fails
-- (an ACL that denies GET) must not leave the keys behind.
local token = 1
if fence then
  token = 1 + (tonumber(redis.call("GET", counter)) or 0)
end
for i = 1, n do
  redis.call("SET", KEYS[i], ARGV[1], "PX", ARGV[2])
end
return token
