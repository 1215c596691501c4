-- publish_top10.lua: upsert a batch of committed standings (possibly none), then publish the
-- top 10 if it changed. Used to seed a cold cache from PostgreSQL and by the reconciler.
-- uses: lib_top10
--
-- KEYS[1..7]  the leaderboard keys (see lib_ranking.lua and lib_top10.lua)
-- ARGV[1]     updatedAt for the message (ISO 8601)
-- ARGV[2]     channel to publish on
-- ARGV[3]     how many users the published board holds (10)
-- ARGV[4]     "1" to start a new epoch (after a rebuild), else "0"
-- ARGV[5..]   groups of four: user id, username, score, member
--
-- Returns {upserted, top_changed (1, 0, or -1 when cold), version}. Seeding ends with a call
-- that starts a new epoch, which is what makes the ranking warm.
local updated_at, channel, top_n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local force_new_epoch = ARGV[4] == '1'

local upserted = 0
for i = 5, #ARGV, 4 do
  upserted = upserted + upsert(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
end
local published = publish_if_changed(top_n, updated_at, channel, force_new_epoch)
return {upserted, published[1], published[2]}
