-- publish_top10.lua: publish the top 10 the ranking holds if it differs from the last one
-- published, or under a new epoch when asked. Used by the reconciler after it repaired the
-- ranking, and by a node that has no board yet.
-- uses: lib_top10
--
-- KEYS[1..7]  the leaderboard keys (see lib_ranking.lua and lib_top10.lua)
-- ARGV[1]     updatedAt for the message (ISO 8601)
-- ARGV[2]     channel to publish on
-- ARGV[3]     how many users the published board holds (10)
-- ARGV[4]     "1" to start a new epoch, else "0"
-- ARGV[5]     the board's id, ARGV[6] the period (named in the message)
-- ARGV[7]     when the period's keys expire, ms since the epoch ("0": never)
--
-- Returns {top_changed (1, 0, or -1 when the ranking is cold: nothing published), version}.
local updated_at, channel, top_n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local force_new_epoch = ARGV[4] == '1'
local board, period, expire_at_ms = ARGV[5], ARGV[6], tonumber(ARGV[7])

local published = publish_if_changed(top_n, updated_at, channel, force_new_epoch, board, period)
expire_period(expire_at_ms)
return {published[1], published[2]}
