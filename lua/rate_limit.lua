-- rate_limit.lua: count one request in a sliding window, or refuse it when the window is full.
--
-- KEYS[1]  the caller's request log: a sorted set of request ids scored by time (ms)
-- ARGV[1]  limit: requests allowed in any window
-- ARGV[2]  window length in milliseconds
-- ARGV[3]  a unique id for this request (two requests in the same millisecond both count)
--
-- Returns {allowed (1 or 0), remaining, retry_after_ms}.
-- A sliding log is exact: never more than `limit` requests in any window, even across the
-- edge of a minute, which a fixed-window counter allows twice over. Refused requests are not
-- logged, so hammering does not push the retry time further out. The clock is Redis's own,
-- so every API node agrees on it.
local log_key = KEYS[1]
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local request_id = ARGV[3]

local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

redis.call('ZREMRANGEBYSCORE', log_key, '-inf', now_ms - window_ms)
local used = redis.call('ZCARD', log_key)
if used < limit then
  redis.call('ZADD', log_key, now_ms, now_ms .. ':' .. request_id)
  redis.call('PEXPIRE', log_key, window_ms)
  return {1, limit - used - 1, 0}
end

-- Full: a slot frees when the entry `used - limit` places from the oldest leaves the window.
local blocking = redis.call('ZRANGE', log_key, used - limit, used - limit, 'WITHSCORES')
local retry_ms = tonumber(blocking[2]) + window_ms - now_ms
if retry_ms < 1 then
  retry_ms = 1
end
return {0, 0, retry_ms}
