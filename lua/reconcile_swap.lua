-- reconcile_swap.lua: finish a full rebuild. If this node still holds the reconcile lock,
-- put the staged ranking, members and names in place of the live ones, then publish the top
-- 10 under a new epoch (clients take it even if it looks older). One atomic step.
-- uses: lib_top10
--
-- KEYS[1..7]   the leaderboard keys (see lib_ranking.lua and lib_top10.lua)
-- KEYS[8..10]  the staged ranking, members and names
-- KEYS[11]     the reconcile lock (another board than all-time: its copy under that tag)
-- ARGV[1]      the lock token this node holds
-- ARGV[2]      updatedAt for the message (ISO 8601)
-- ARGV[3]      channel to publish on
-- ARGV[4]      how many users the published board holds (10)
-- ARGV[5]      the board's id, ARGV[6] the period (named in the message)
-- ARGV[7]      when the period's keys expire, ms since the epoch ("0": never)
--
-- Returns {live members before the swap, version published}, or {-1, 0} when the lock was
-- lost (another node may be rebuilding: nothing is touched).
local staged_keys, lock_key = {KEYS[8], KEYS[9], KEYS[10]}, KEYS[11]
local token, updated_at, channel, top_n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local board, period, expire_at_ms = ARGV[5], ARGV[6], tonumber(ARGV[7])

if redis.call('GET', lock_key) ~= token then
  return {-1, 0}
end

local before = redis.call('ZCARD', ranking_key)
local live = {ranking_key, members_key, names_key}
for i, staged in ipairs(staged_keys) do
  -- UNLINK, not RENAME over it or DEL: both free the old value in this call, O(N) for a
  -- large ranking, with Redis answering nobody meanwhile. UNLINK frees it in the background.
  redis.call('UNLINK', live[i])
  if redis.call('EXISTS', staged) == 1 then
    redis.call('RENAME', staged, live[i])
    -- RENAME carries the staging expiry over: the live key expires only with its period.
    redis.call('PERSIST', live[i])
  end
end

local published = publish_if_changed(top_n, updated_at, channel, true, board, period)
expire_period(expire_at_ms)
return {before, published[2]}
