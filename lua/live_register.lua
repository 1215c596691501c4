-- live_register.lua: record a new live connection of a user; evict the user's oldest ones
-- beyond the limit, on whichever node they live.
--
-- KEYS[1]  the user's live connections: a sorted set of "<node id>|<connection id>" scored by
--          the time (µs, Redis's clock) each was registered
-- ARGV[1]  the new connection's member, "<node id>|<connection id>"
-- ARGV[2]  limit: live connections allowed per user
-- ARGV[3]  expiry of the set in seconds (renewed on every registration)
-- ARGV[4]  the prefix of each node's control channel; the node id completes it
--
-- Returns the evicted members, oldest first. Each is also PUBLISHed on its node's control
-- channel so that node closes it; the caller closes the ones on its own node directly.
-- Redis's own clock orders the registrations, so every node agrees which one is oldest.
local key = KEYS[1]
local member = ARGV[1]
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local channel_prefix = ARGV[4]

local now = redis.call('TIME')
redis.call('ZADD', key, tonumber(now[1]) * 1000000 + tonumber(now[2]), member)
redis.call('EXPIRE', key, ttl)

local excess = redis.call('ZCARD', key) - limit
if excess <= 0 then
  return {}
end
local evicted = redis.call('ZRANGE', key, 0, excess - 1)
redis.call('ZREMRANGEBYRANK', key, 0, excess - 1)
local own_node = string.match(member, '^([^|]*)|')
for _, old in ipairs(evicted) do
  local node = string.match(old, '^([^|]*)|')
  if node and node ~= own_node then
    redis.call('PUBLISH', channel_prefix .. node, old)
  end
end
return evicted
