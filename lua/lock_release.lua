-- lock_release.lua: release a lock, only if this holder still owns it (a holder whose lock
-- expired must not delete its successor's).
--
-- KEYS[1]  the lock
-- ARGV[1]  the holder's token
--
-- Returns 1 when released, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
