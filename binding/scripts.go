package binding

import "github.com/redis/go-redis/v9"

// Every script touches the keys of one virtual number only (one hash tag).

// createScript binds A and B on X unless X is not an active pool number or
// either party already holds X (active or quarantined).
//
// KEYS: 1 number, 2 route A, 3 route B, 4 binding, 5 active set.
// ARGV: 1 now ms, 2 expiry ms, 3 quarantine ms, 4 id, 5 a, 6 b, 7 x,
// 8 allow A→B, 9 allow B→A, 10 record, 11 max duration s, 12 ring timeout s,
// 13 directions, 14 order id, 15 area.
var createScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'unknown', 0} end
if st ~= 'active' then return {'retired', 0} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'busy_a', 0} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'busy_b', 0} end
local now = tonumber(ARGV[1])
local keep = tonumber(ARGV[2]) - now + tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'id', ARGV[4], 'peer', ARGV[6], 'exp', ARGV[2], 'rel', '0',
  'allow', ARGV[8], 'rec', ARGV[10], 'max', ARGV[11], 'ring', ARGV[12])
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('HSET', KEYS[3], 'id', ARGV[4], 'peer', ARGV[5], 'exp', ARGV[2], 'rel', '0',
  'allow', ARGV[9], 'rec', ARGV[10], 'max', ARGV[11], 'ring', ARGV[12])
redis.call('PEXPIRE', KEYS[3], keep)
redis.call('HSET', KEYS[4], 'a', ARGV[5], 'b', ARGV[6], 'x', ARGV[7], 'created', ARGV[1],
  'exp', ARGV[2], 'rel', '0', 'rec', ARGV[10], 'max', ARGV[11], 'ring', ARGV[12],
  'dir', ARGV[13], 'order', ARGV[14], 'area', ARGV[15], 'q', ARGV[3])
redis.call('PEXPIRE', KEYS[4], keep)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[4])
if redis.call('PTTL', KEYS[5]) < keep then redis.call('PEXPIRE', KEYS[5], keep) end
return {'ok', redis.call('ZCARD', KEYS[5])}
`)

// releaseScript ends a binding now and starts its quarantine. Releasing a
// binding that already ended changes nothing.
//
// KEYS: 1 binding, 2 route A, 3 route B, 4 active set.
// ARGV: 1 now ms, 2 quarantine ms, 3 id.
var releaseScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'exp', 'rel')
if not h[1] then return 'not_found' end
if h[2] == '1' then return 'released' end
if tonumber(h[1]) <= tonumber(ARGV[1]) then return 'expired' end
redis.call('HSET', KEYS[1], 'exp', ARGV[1], 'rel', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 2, 3 do
  if redis.call('HGET', KEYS[i], 'id') == ARGV[3] then
    redis.call('HSET', KEYS[i], 'exp', ARGV[1], 'rel', '1')
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
redis.call('ZREM', KEYS[4], ARGV[3])
return 'ok'
`)

// extendScript pushes an active binding's expiry to ARGV[2].
//
// KEYS: 1 binding, 2 route A, 3 route B, 4 active set.
// ARGV: 1 now ms, 2 new expiry ms, 3 quarantine ms, 4 id.
var extendScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'exp', 'rel')
if not h[1] then return 'not_found' end
if h[2] == '1' then return 'released' end
if tonumber(h[1]) <= tonumber(ARGV[1]) then return 'expired' end
local keep = tonumber(ARGV[2]) - tonumber(ARGV[1]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'exp', ARGV[2])
redis.call('PEXPIRE', KEYS[1], keep)
for i = 2, 3 do
  if redis.call('HGET', KEYS[i], 'id') == ARGV[4] then
    redis.call('HSET', KEYS[i], 'exp', ARGV[2])
    redis.call('PEXPIRE', KEYS[i], keep)
  end
end
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[4])
if redis.call('PTTL', KEYS[4]) < keep then redis.call('PEXPIRE', KEYS[4], keep) end
return 'ok'
`)
