-- remove_user.lua: take one user out of one board's ranking (a banned player), and publish
-- the top 10 if that changed it. Safe to repeat. A ranking that does not exist stays so.
-- uses: lib_top10
--
-- KEYS[1..7]  the leaderboard keys (see lib_ranking.lua and lib_top10.lua)
-- ARGV[1]     user id
-- ARGV[2]     updatedAt for the message (ISO 8601)
-- ARGV[3]     channel to publish on
-- ARGV[4]     how many users the published board holds (10)
-- ARGV[5]     the board's id, ARGV[6] the period (named in the message)
--
-- Returns {removed (1 or 0), top_changed (1, 0, or -1 when the ranking is cold), version,
-- message (when the top changed, else '')}.
local user_id, updated_at, channel = ARGV[1], ARGV[2], ARGV[3]
local top_n, board, period = tonumber(ARGV[4]), ARGV[5], ARGV[6]

local removed = remove_user(user_id)
local published = {0, 0}
if removed == 1 then
  published = publish_if_changed(top_n, updated_at, channel, false, board, period)
end
return {removed, published[1], published[2], published[3] or ''}
