-- apply_score.lua: write one user's committed score into the ranking, and publish the top 10
-- if that changed it. One atomic round trip; safe to repeat and safe to arrive late.
-- uses: lib_top10
--
-- KEYS[1..7]  the leaderboard keys (see lib_ranking.lua and lib_top10.lua)
-- ARGV[1]     user id
-- ARGV[2]     username
-- ARGV[3]     the user's committed total score (absolute, not a delta; 0 takes them out)
-- ARGV[4]     the user's ranking member, which encodes when the score was reached
-- ARGV[5]     updatedAt for the message (ISO 8601 time of the commit)
-- ARGV[6]     channel to publish on
-- ARGV[7]     how many users the published board holds (10)
-- ARGV[8]     the board's id, ARGV[9] the period (named in the message)
-- ARGV[10]    when the period's keys expire, ms since the epoch ("0": never)
--
-- Returns {applied, rank (0 = unranked), previous_rank (0 = unranked), top_changed (1, 0, or -1 when the
-- ranking is cold and must be rebuilt first: nothing is published then), version, message}:
-- the published message when the top changed (so the caller's node can show it at once),
-- else an empty string.
local user_id, username, score, member = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local updated_at, channel, top_n = ARGV[5], ARGV[6], tonumber(ARGV[7])
local board, period, expire_at_ms = ARGV[8], ARGV[9], tonumber(ARGV[10])

local previous_score = current_score(user_id)
local previous_rank = 0
if previous_score then
  previous_rank = rank_of_score(previous_score)
end

local applied = upsert(user_id, username, score, member)
local published = publish_if_changed(top_n, updated_at, channel, false, board, period)

-- The user's rank by what the ranking now holds (a newer score, if this call arrived late);
-- read before the expiry, which removes a period already over at once.
-- 0: the user is not ranked (a correction took every point away).
local now_score = current_score(user_id)
local rank = 0
if now_score then
  rank = rank_of_score(now_score)
end
expire_period(expire_at_ms)
return {applied, rank, previous_rank, published[1], published[2], published[3] or ''}
