-- board_read.lua: one page of a board's ranking after a keyset cursor, or the rows around a
-- user, each row with its shared rank. O(log N) per distinct score on the page: no offsets
-- and no scan of a tie group, however far down the page is.
--
-- KEYS[1] ranking   sorted set: member "<16-digit (MAX - reached_at_us)>:<user id>", score = points
-- KEYS[2] members   hash: user id -> the user's current member in the ranking
-- KEYS[3] names     hash: user id -> username
-- KEYS[4] version   the version counter: without it the ranking is cold (maybe partial)
-- ARGV[1]  "page" or "around"
-- page:    ARGV[2] how many rows, ARGV[3] the cursor's score ("" from the top), ARGV[4] its member
-- around:  ARGV[2] how many rows on each side, ARGV[3] the user id
--
-- Returns {status, total, then per row: user id, reached_at (µs since the epoch), score, rank,
-- username}. status: 1 read, 0 the user is not ranked (around), -1 cold (nothing read: the
-- caller asks PostgreSQL). Rows come split, as numbers where they are: the caller builds one
-- object per row and nothing more.
local ranking_key, members_key, names_key, version_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode, count = ARGV[1], tonumber(ARGV[2])

if redis.call('EXISTS', version_key) == 0 then
  return {-1, 0}
end
local total = redis.call('ZCARD', ranking_key)

local first, last
if mode == 'page' then
  local after_score, after_member = ARGV[3], ARGV[4]
  if after_score == '' then
    first = 0
  else
    local position = redis.call('ZREVRANK', ranking_key, after_member)
    if not position then
      -- The cursor's row moved (its user scored since). Redis ranks only members it holds:
      -- stand the cursor's member in for the length of this script (atomic, no net change)
      -- to learn where it would be, instead of scanning its tie group.
      redis.call('ZADD', ranking_key, after_score, after_member)
      position = redis.call('ZREVRANK', ranking_key, after_member)
      redis.call('ZREM', ranking_key, after_member)
      position = position - 1
    end
    first = position + 1
  end
  last = first + count - 1
else
  local member = redis.call('HGET', members_key, ARGV[3])
  local position = member and redis.call('ZREVRANK', ranking_key, member)
  if not position then
    return {0, total}
  end
  first = math.max(0, position - count)
  last = position + count
end

local rows = redis.call('ZREVRANGE', ranking_key, first, last, 'WITHSCORES')
local reply = {1, total}
if #rows == 0 then
  return reply
end
-- Members are "<16-digit (MAX - reached_at_us)>:<user id>" (app/core/ranking.py); MAX and
-- every difference stay below 2^53, so the arithmetic is exact in Lua's doubles.
local MAX_MICROS = 9000000000000000
local users = {}
for i = 1, #rows, 2 do
  users[#users + 1] = string.sub(rows[i], 18)
end
local names = redis.call('HMGET', names_key, unpack(users))
local rank, previous = 0, nil
for i = 1, #rows, 2 do
  local score = rows[i + 1]
  if score ~= previous then
    -- Shared ranks: 1 + the number of strictly higher scores.
    rank = 1 + redis.call('ZCOUNT', ranking_key, '(' .. score, '+inf')
    previous = score
  end
  reply[#reply + 1] = users[(i + 1) / 2]
  reply[#reply + 1] = MAX_MICROS - tonumber(string.sub(rows[i], 1, 16))
  reply[#reply + 1] = tonumber(score)
  reply[#reply + 1] = rank
  reply[#reply + 1] = names[(i + 1) / 2] or ''
end
return reply
