-- reconcile_batch.lua: compare a batch of committed standings (read from PostgreSQL) with the
-- live ranking, and, by mode, only count the drift ("check"), repair it in place ("fix"), or
-- copy the batch into the staging keys of a full rebuild ("stage", the live keys untouched).
-- uses: lib_ranking
--
-- KEYS[1..3]  the live ranking, members and names (see lib_ranking.lua)
-- KEYS[4..6]  the staging ranking, members and names of a full rebuild (only "stage" writes)
-- ARGV[1]     "check", "fix" or "stage"
-- ARGV[2]     seconds the staging keys live (a crashed rebuild leaves nothing behind)
-- ARGV[3]     the batch, a JSON array of [user id, username, score, member] (score 0: must be
--             unranked). One argument, not four per user: encoding thousands of arguments
--             costs the caller far more CPU than one JSON string costs cjson here.
--
-- Returns {missing, wrong, extra, accounted, newer}: users absent from the ranking; users
-- standing with a wrong score, member or name; users ranked who must not be; users whose
-- live member is in the ranking (a full pass derives orphan members from it); users whose
-- live standing is newer than the batch (committed after it was read: left alone).
local stage_ranking, stage_members, stage_names = KEYS[4], KEYS[5], KEYS[6]
local mode, stage_ttl, batch = ARGV[1], tonumber(ARGV[2]), cjson.decode(ARGV[3])
local fix, stage = mode == 'fix', mode == 'stage'

local missing, wrong, extra, accounted, newer = 0, 0, 0, 0, 0

for _, row in ipairs(batch) do
  local user_id, username, score, member = row[1], row[2], row[3], row[4]
  local live_score, live_member = current_score(user_id)
  if live_score then
    accounted = accounted + 1
  end

  if tonumber(score) <= 0 then
    -- A standing of an unranked user is stray, unless it is newer than the row read (the
    -- user scored after the batch was read; the member then carries a later reached_at). An
    -- unranked member (a correction's tombstone, see upsert) is no standing at all.
    if live_member and live_member < member then
      newer = newer + 1
    elseif live_score then
      extra = extra + 1
      if fix then
        redis.call('ZREM', ranking_key, live_member)
        redis.call('HDEL', members_key, user_id)
      end
    end
  else
    if stage then
      place_in(stage_ranking, stage_members, stage_names, user_id, username, score, member, nil)
    end
    if not live_score and live_member and live_member < member then
      -- Unranked by a correction committed after this batch was read: the tombstone is newer.
      newer = newer + 1
    elseif not live_score then
      missing = missing + 1
      if fix then
        place(user_id, username, score, member, nil)
      end
    elseif live_member < member then
      -- A smaller prefix is a later reached_at: the live standing was committed after this
      -- batch was read, so it is the true one. Never undo it.
      newer = newer + 1
    elseif live_member ~= member or tonumber(live_score) ~= tonumber(score)
        or redis.call('HGET', names_key, user_id) ~= username then
      wrong = wrong + 1
      if fix then
        place(user_id, username, score, member, live_member)
      end
    end
  end
end

if stage then
  for _, key in ipairs({stage_ranking, stage_members, stage_names}) do
    if redis.call('EXISTS', key) == 1 then
      redis.call('EXPIRE', key, stage_ttl)
    end
  end
end
return {missing, wrong, extra, accounted, newer}
