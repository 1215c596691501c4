-- lib_top10.lua: publishing the top 10 of the ranking. Not a script of its own:
-- app/redis/scripts.py places it, after lib_ranking which it uses, in front of each script
-- that names it, so every script stays one atomic EVALSHA.
-- uses: lib_ranking
--
-- Every script that uses it takes the leaderboard KEYS, which share one hash tag:
--   KEYS[1..3] ranking, members, names   (see lib_ranking.lua)
--   KEYS[4] top10     string: ordered "user:score" pairs of the last published top 10
--   KEYS[5] message   string: the last published LEADERBOARD_UPDATE message
--   KEYS[6] version   integer: version of the last published message
--   KEYS[7] epoch     string: the current epoch (a new one whenever the version counter is lost)
-- All seven belong to one board in one period (the all-time board's keep their old names).
local top10_key, message_key, version_key, epoch_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]

-- A period's keys go when it is over (at_ms after it ended; 0: never, the all-time board).
-- A late apply after that recreates them already expired: nothing lingers.
local function expire_period(at_ms)
  if at_ms > 0 then
    for i = 1, 7 do
      redis.call('PEXPIREAT', KEYS[i], at_ms)
    end
  end
end

-- Read the top N; when its ordered (user, score) pairs differ from the last published ones,
-- or when asked to start a new epoch, store and publish a new LEADERBOARD_UPDATE message
-- naming its board and period (one channel carries every board's messages).
-- Returns {changed (1 or 0), version, message (when changed)}, or {-1, 0} when the ranking is
-- cold: the version counter is gone (a new Redis, or one that lost its data), so the ranking
-- may hold only part of the users and must be rebuilt from PostgreSQL (a full reconcile)
-- before anything is published from it.
local function publish_if_changed(top_n, updated_at, channel, force_new_epoch, board, period)
  local version = tonumber(redis.call('GET', version_key))
  if not version and not force_new_epoch then
    return {-1, 0}
  end
  local top = redis.call('ZREVRANGE', ranking_key, 0, top_n - 1, 'WITHSCORES')
  local pairs_ = {}
  local users = {}
  for i = 1, #top, 2 do
    users[#users + 1] = user_of(top[i])
    pairs_[#pairs_ + 1] = users[#users] .. ':' .. top[i + 1]
  end
  local signature = table.concat(pairs_, ',')

  local unchanged = redis.call('GET', top10_key) == signature
    and redis.call('EXISTS', message_key) == 1
  if version and unchanged and not force_new_epoch then
    return {0, version}
  end

  if force_new_epoch or redis.call('EXISTS', epoch_key) == 0 then
    -- The ranking was (re)built from PostgreSQL: a new epoch tells clients to take the next
    -- message even though the version counter may have restarted.
    local t = redis.call('TIME')
    redis.call('SET', epoch_key, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  version = redis.call('INCR', version_key)
  local epoch = redis.call('GET', epoch_key)

  local names = {}
  if #users > 0 then
    names = redis.call('HMGET', names_key, unpack(users))
  end
  local rows = {}
  local rank = 0
  local previous_score = nil
  for i = 1, #users do
    local score = top[2 * i]
    if score ~= previous_score then
      rank = i
      previous_score = score
    end
    rows[i] = '{"userId":' .. cjson.encode(users[i])
      .. ',"username":' .. cjson.encode(names[i] or '')
      .. ',"score":' .. score
      .. ',"rank":' .. rank .. '}'
  end
  local message = '{"type":"LEADERBOARD_UPDATE","board":' .. cjson.encode(board)
    .. ',"period":' .. cjson.encode(period)
    .. ',"epoch":' .. cjson.encode(epoch)
    .. ',"version":' .. version
    .. ',"data":{"users":[' .. table.concat(rows, ',') .. ']'
    .. ',"updatedAt":' .. cjson.encode(updated_at) .. '}}'

  redis.call('SET', top10_key, signature)
  redis.call('SET', message_key, message)
  redis.call('PUBLISH', channel, message)
  return {1, version, message}
end
