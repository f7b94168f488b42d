package verify

import "github.com/redis/go-redis/v9"

// Every script touches the keys of one slot only (one hash tag).

// startScript stores a pending verification with the first candidate caller
// ID that no live verification of the number used, and records it as used.
// It answers 'retry' when the live verifications are not the ones the
// caller listed (their hashes must be passed as KEYS).
//
// KEYS: 1 new verification, 2 used set, 3.. the listed live verifications.
// ARGV: 1 now ms, 2 reuse window ms, 3 keep ms, 4 id, 5 number,
// 6 requester, 7 expiry ms, 8 max checks, 9 n listed live ids,
// 10..9+n live ids, then the candidate caller IDs in random order.
var startScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
local n = tonumber(ARGV[9])
local live = redis.call('ZRANGE', KEYS[2], 0, -1)
if #live ~= n then return {'retry'} end
local listed = {}
for i = 1, n do listed[ARGV[9 + i]] = true end
for _, id in ipairs(live) do
  if not listed[id] then return {'retry'} end
end
local used = {}
for i = 1, n do
  local c = redis.call('HGET', KEYS[2 + i], 'cid')
  if c then used[c] = true end
end
for i = 10 + n, #ARGV do
  local c = ARGV[i]
  if not used[c] then
    redis.call('HSET', KEYS[1], 'num', ARGV[5], 'cid', c, 'req', ARGV[6], 'st', 'pending',
      'att', '0', 'max', ARGV[8], 'created', ARGV[1], 'exp', ARGV[7])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    redis.call('ZADD', KEYS[2], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
    return {'ok', c}
  end
end
return {'exhausted'}
`)

// checkScript counts one check and compares the reported number with the
// expected caller ID, whole or by its last N digits. It never returns the
// caller ID.
//
// KEYS: 1 verification.
// ARGV: 1 now ms, 2 reported number, 3 last digits (0: whole number),
// 4 consume deadline ms.
// Returns {result, status, attempts, max checks, expiry ms, requester}.
var checkScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'st', 'att', 'max', 'exp', 'cid', 'req')
if not h[1] then return {'not_found', '', 0, 0, 0, ''} end
local st, att, mx, exp = h[1], tonumber(h[2]), tonumber(h[3]), tonumber(h[4])
if st == 'pending' and tonumber(ARGV[1]) >= exp then
  st = 'expired'
  redis.call('HSET', KEYS[1], 'st', st)
end
if st == 'pending' and att >= mx then
  st = 'locked'
  redis.call('HSET', KEYS[1], 'st', st)
end
if st ~= 'pending' then return {st, st, att, mx, exp, h[6]} end
att = att + 1
local want, got = h[5], ARGV[2]
local n = tonumber(ARGV[3])
if n > 0 then
  want = string.sub(want, -n)
  got = string.sub(got, -n)
end
if want == got then
  redis.call('HSET', KEYS[1], 'att', att, 'st', 'verified', 'ver', ARGV[1], 'cexp', ARGV[4])
  return {'verified', 'verified', att, mx, exp, h[6]}
end
if att >= mx then st = 'locked' end
redis.call('HSET', KEYS[1], 'att', att, 'st', st)
return {'mismatch', st, att, mx, exp, h[6]}
`)

// failScript marks a pending verification failed (its call was not placed).
//
// KEYS: 1 verification.
var failScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'st') == 'pending' then
  redis.call('HSET', KEYS[1], 'st', 'failed')
end
return 1
`)

// consumeScript spends a verified verification of a number once.
//
// KEYS: 1 verification. ARGV: 1 now ms, 2 number.
// Returns {result, requester}; result is ok, not_found, other_number,
// consumed, stale or the verification's status.
var consumeScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'st', 'num', 'used', 'cexp', 'req')
if not h[1] then return {'not_found', ''} end
local req = h[5] or ''
if h[2] ~= ARGV[2] then return {'other_number', req} end
if h[1] ~= 'verified' then return {h[1], req} end
if h[3] == '1' then return {'consumed', req} end
if tonumber(ARGV[1]) >= tonumber(h[4]) then return {'stale', req} end
redis.call('HSET', KEYS[1], 'used', '1', 'usedat', ARGV[1])
return {'ok', req}
`)

// limitScript takes one slot of a sliding-window limit, or answers how many
// ms until one frees up.
//
// KEYS: 1 window sorted set. ARGV: 1 now ms, 2 window ms, 3 max, 4 member.
// Returns -1 when taken, else the wait in ms.
var limitScript = redis.NewScript(`
local now, win = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + win - now
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], win)
return -1
`)
