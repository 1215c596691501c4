-- lock_extend.lua: keep a lock alive, only if this holder still owns it.
--
-- KEYS[1]  the lock
-- ARGV[1]  the holder's token
-- ARGV[2]  new time to live in milliseconds
--
-- Returns 1 when extended, 0 when the lock expired or another holder has it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
