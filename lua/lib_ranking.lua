-- lib_ranking.lua: the ranking of every user and the one way a standing is written into it.
-- Not a script of its own: app/redis/scripts.py places it in front of each script that names
-- it (directly or through lib_top10), so every script stays one atomic EVALSHA.
--
-- Every script that uses it takes these KEYS first, under one hash tag:
--   KEYS[1] ranking   sorted set: member "<16-digit (MAX - reached_at_us)>:<user id>", score = points
--   KEYS[2] members   hash: user id -> the user's current member in the ranking
--   KEYS[3] names     hash: user id -> username
local ranking_key, members_key, names_key = KEYS[1], KEYS[2], KEYS[3]

-- Length of the "<16 digits>:" prefix in front of the user id in a ranking member.
local MEMBER_PREFIX = 17

local function user_of(member)
  return string.sub(member, MEMBER_PREFIX + 1)
end

-- Rank of a score: 1 + the number of users with a strictly higher score (ties share a rank).
local function rank_of_score(score)
  return 1 + redis.call('ZCOUNT', ranking_key, '(' .. score, '+inf')
end

-- The user's score in the ranking (false when the member is not ranked) and the member the
-- members hash holds for them; nil, nil when the user has no member at all.
local function current_score(user_id)
  local member = redis.call('HGET', members_key, user_id)
  if not member then
    return nil, nil
  end
  return redis.call('ZSCORE', ranking_key, member), member
end

-- Write a standing into a ranking, its members and names (the live keys or a rebuild's
-- staging keys), replacing old_member when the user stood under another one.
local function place_in(ranking, members, names, user_id, username, score, member, old_member)
  if old_member and old_member ~= member then
    redis.call('ZREM', ranking, old_member)
  end
  redis.call('ZADD', ranking, score, member)
  redis.call('HSET', members, user_id, member)
  redis.call('HSET', names, user_id, username)
end

local function place(user_id, username, score, member, old_member)
  place_in(ranking_key, members_key, names_key, user_id, username, score, member, old_member)
end

-- Store the user's committed standing unless a newer one is already there. A smaller member
-- prefix means a later reached_at, and reached_at grows with every commit of that user, so a
-- late or repeated call can never undo a newer one. Returns 1 when it changed the ranking.
--
-- A score of 0 or less (an operator's correction took every point away) takes the user out
-- of the ranking; their member stays in the members hash, unranked, as a tombstone: a late
-- apply of an earlier commit (an older member) then cannot bring the old score back.
local function upsert(user_id, username, score, member)
  local stored_score, stored_member = current_score(user_id)
  if stored_member and member >= stored_member then
    if stored_score then
      redis.call('HSET', names_key, user_id, username)
    end
    return 0
  end
  if tonumber(score) <= 0 then
    if stored_member then
      redis.call('ZREM', ranking_key, stored_member)
    end
    redis.call('HSET', members_key, user_id, member)
    redis.call('HDEL', names_key, user_id)
    return 1
  end
  place(user_id, username, score, member, stored_member)
  return 1
end

-- Take the user out of the ranking altogether (a banned player): no score, no member, no
-- name. Returns 1 when they were there.
local function remove_user(user_id)
  local member = redis.call('HGET', members_key, user_id)
  redis.call('HDEL', members_key, user_id)
  redis.call('HDEL', names_key, user_id)
  if member then
    return redis.call('ZREM', ranking_key, member)
  end
  return 0
end
