package binding

import "github.com/redis/go-redis/v9"

// Every script touches the keys of one virtual number only (one hash tag).

// createScript binds A and B on X (AXB) unless X is not an active pool
// number, is reserved for another mode, is held by an exclusive mode, or
// either party already holds X (active or quarantined). It raises the
// number's "shared" mark (the end of its last AXB quarantine) for the
// exclusive modes' allocator.
//
// KEYS: 1 number, 2 route A, 3 route B, 4 binding, 5 active set.
// ARGV: 1 now ms, 2 expiry ms, 3 quarantine ms, 4 id, 5 a, 6 b, 7 x,
// 8 allow A→B, 9 allow B→A, 10 record, 11 max duration s, 12 ring timeout s,
// 13 directions, 14 order id, 15 area.
// Returns {result, load or the end of the hold (ms) for 'held'}.
var createScript = redis.NewScript(`
local n = redis.call('HMGET', KEYS[1], 'state', 'mode', 'held', 'shared')
if not n[1] then return {'unknown', 0} end
if n[1] ~= 'active' then return {'retired', 0} end
if n[2] and n[2] ~= 'axb' then return {'reserved', 0} end
local now = tonumber(ARGV[1])
if n[3] and tonumber(n[3]) > now then return {'held', tonumber(n[3])} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'busy_a', 0} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'busy_b', 0} end
local keep = tonumber(ARGV[2]) - now + tonumber(ARGV[3])
local untilq = tonumber(ARGV[2]) + tonumber(ARGV[3])
if not n[4] or tonumber(n[4]) < untilq then redis.call('HSET', KEYS[1], 'shared', untilq) end
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

// extendScript pushes an active binding's expiry to ARGV[2]. For an AXB
// binding it raises the number's "shared" mark; for an exclusive one it
// extends the hold, X's mode record and the group copy.
//
// KEYS: 1 binding, 2 route A, 3 route B, 4 active set, 5 number, 6 mode
// record, 7 members copy.
// ARGV: 1 now ms, 2 new expiry ms, 3 quarantine ms, 4 id, 5 exclusive (0/1).
var extendScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'exp', 'rel')
if not h[1] then return 'not_found' end
if h[2] == '1' then return 'released' end
if tonumber(h[1]) <= tonumber(ARGV[1]) then return 'expired' end
local keep = tonumber(ARGV[2]) - tonumber(ARGV[1]) + tonumber(ARGV[3])
local untilq = tonumber(ARGV[2]) + tonumber(ARGV[3])
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
if ARGV[5] == '1' then
  if redis.call('HGET', KEYS[6], 'id') == ARGV[4] then
    redis.call('HSET', KEYS[6], 'exp', ARGV[2])
    redis.call('PEXPIRE', KEYS[6], keep)
    redis.call('HSET', KEYS[5], 'held', untilq)
    if redis.call('EXISTS', KEYS[7]) == 1 then redis.call('PEXPIRE', KEYS[7], keep) end
  end
else
  local sh = redis.call('HGET', KEYS[5], 'shared')
  if not sh or tonumber(sh) < untilq then redis.call('HSET', KEYS[5], 'shared', untilq) end
end
return 'ok'
`)

// createHeldScript binds owner A (and the optional fixed B) on X in an
// exclusive mode, unless X is not an active pool number, is reserved for
// another mode, is held by an exclusive binding, or carries AXB pairs
// (live or quarantined: the number's "shared" mark, or its active set,
// whose TTL covers every binding's quarantine). It holds X until the end
// of the binding's quarantine and writes X's mode record, A's route (to
// B, or to the last caller when B is empty), B's route (to A) and, for
// AXG, the copy of the group.
//
// KEYS: 1 number, 2 mode record, 3 route A, 4 route B, 5 binding,
// 6 active set, 7 members copy, 8 last caller.
// ARGV: 1 now ms, 2 expiry ms, 3 quarantine ms, 4 id, 5 a, 6 b (empty for
// none), 7 x, 8 mode, 9 record, 10 max duration s, 11 ring timeout s,
// 12 order id, 13 area, 14 show caller (0/1), 15 group, 16 group version,
// 17... members.
// Returns {result, detail}: 'ok' and 1, 'held' and the end of the hold
// (ms), 'shared' and the end of the AXB quarantine mark (ms), or another
// refusal and 0.
var createHeldScript = redis.NewScript(`
local n = redis.call('HMGET', KEYS[1], 'state', 'mode', 'held', 'shared')
if not n[1] then return {'unknown', 0} end
if n[1] ~= 'active' then return {'retired', 0} end
if n[2] and n[2] ~= ARGV[8] then return {'reserved', 0} end
local now = tonumber(ARGV[1])
if n[3] and tonumber(n[3]) > now then return {'held', tonumber(n[3])} end
if n[4] and tonumber(n[4]) > now then return {'shared', tonumber(n[4])} end
if redis.call('EXISTS', KEYS[6]) == 1 then
  return {'shared', now + redis.call('PTTL', KEYS[6])}
end
local keep = tonumber(ARGV[2]) - now + tonumber(ARGV[3])
local untilq = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'held', untilq, 'holder', ARGV[8])
redis.call('DEL', KEYS[7], KEYS[8])
redis.call('HSET', KEYS[2], 'mode', ARGV[8], 'id', ARGV[4], 'a', ARGV[5], 'b', ARGV[6],
  'exp', ARGV[2], 'rel', '0', 'rec', ARGV[9], 'max', ARGV[10], 'ring', ARGV[11],
  'show', ARGV[14], 'group', ARGV[15], 'gver', ARGV[16])
redis.call('PEXPIRE', KEYS[2], keep)
local last = '0'
if ARGV[6] == '' then last = '1' end
redis.call('HSET', KEYS[3], 'id', ARGV[4], 'peer', ARGV[6], 'exp', ARGV[2], 'rel', '0',
  'allow', '1', 'rec', ARGV[9], 'max', ARGV[10], 'ring', ARGV[11], 'mode', ARGV[8], 'last', last)
redis.call('PEXPIRE', KEYS[3], keep)
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[4], 'id', ARGV[4], 'peer', ARGV[5], 'exp', ARGV[2], 'rel', '0',
    'allow', '1', 'rec', ARGV[9], 'max', ARGV[10], 'ring', ARGV[11], 'mode', ARGV[8], 'show', ARGV[14])
  redis.call('PEXPIRE', KEYS[4], keep)
end
redis.call('HSET', KEYS[5], 'a', ARGV[5], 'b', ARGV[6], 'x', ARGV[7], 'created', ARGV[1],
  'exp', ARGV[2], 'rel', '0', 'rec', ARGV[9], 'max', ARGV[10], 'ring', ARGV[11],
  'dir', 'both', 'order', ARGV[12], 'area', ARGV[13], 'q', ARGV[3],
  'mode', ARGV[8], 'show', ARGV[14], 'group', ARGV[15])
redis.call('PEXPIRE', KEYS[5], keep)
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[6], keep)
for i = 17, #ARGV, 1000 do
  redis.call('SADD', KEYS[7], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV >= 17 then redis.call('PEXPIRE', KEYS[7], keep) end
return {'ok', 1}
`)

// releaseHeldScript ends an exclusive binding now: its routes and X's mode
// record go into quarantine, and so does the hold on X, which ends with
// the quarantine; the group copy and the last caller are dropped.
//
// KEYS: 1 binding, 2 route A, 3 route B, 4 active set, 5 number, 6 mode
// record, 7 members copy, 8 last caller.
// ARGV: 1 now ms, 2 quarantine ms, 3 id.
var releaseHeldScript = redis.NewScript(`
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
if redis.call('ZCARD', KEYS[4]) == 0 then redis.call('PEXPIRE', KEYS[4], ARGV[2]) end
if redis.call('HGET', KEYS[6], 'id') == ARGV[3] then
  redis.call('HSET', KEYS[6], 'exp', ARGV[1], 'rel', '1')
  redis.call('PEXPIRE', KEYS[6], ARGV[2])
  redis.call('HSET', KEYS[5], 'held', tonumber(ARGV[1]) + tonumber(ARGV[2]))
  redis.call('DEL', KEYS[7], KEYS[8])
end
return 'ok'
`)

// resolveScript answers "caller dialed X" in one round trip, for every
// mode. The caller's route on X decides when there is one (an AXB party,
// an exclusive binding's owner or fixed B); an owner whose route has no
// peer ("last" = 1) gets the last caller within the reply window (for an
// AXE owner, whose route names its extension, the extension's last
// caller). Anyone
// else gets X's mode record, marked 'stranger'; for a live AXG binding
// with the membership answer ('member' 0/1); and a stranger who may reach
// the owner (AXN, an AXG member) becomes the last caller.
//
// KEYS: 1 route of the caller, 2 mode record, 3 last caller, 4 members
// copy, 5 extensions' last callers.
// ARGV: 1 now ms, 2 caller, 3 reply window ms, 4 record the last caller
// (1) or only answer (0).
// Returns a flat field/value list ({} for nothing on X).
var resolveScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local r = redis.call('HGETALL', KEYS[1])
if #r > 0 then
  local last, exp, rel, ext = false, 0, '0', false
  for i = 1, #r, 2 do
    local k = r[i]
    if k == 'last' then last = r[i + 1] == '1'
    elseif k == 'exp' then exp = tonumber(r[i + 1])
    elseif k == 'rel' then rel = r[i + 1]
    elseif k == 'ext' then ext = r[i + 1] end
  end
  if last and rel ~= '1' and exp > now then
    local ln, lt = false, 0
    if ext then
      local v = redis.call('HGET', KEYS[5], ext)
      if v then
        local t, num = string.match(v, '^(%d+)|(.*)$')
        ln, lt = num, tonumber(t)
      end
    else
      local l = redis.call('HMGET', KEYS[3], 'n', 't')
      if l[1] then ln, lt = l[1], tonumber(l[2]) end
    end
    if ln and lt > now - tonumber(ARGV[3]) then
      r[#r + 1] = 'peer'
      r[#r + 1] = ln
    end
  end
  return r
end
local m = redis.call('HGETALL', KEYS[2])
if #m == 0 then return m end
local h = {}
for i = 1, #m, 2 do h[m[i]] = m[i + 1] end
m[#m + 1] = 'stranger'
m[#m + 1] = '1'
if h['rel'] == '1' or tonumber(h['exp']) <= now then return m end
if h['mode'] == 'axg' then
  local member = redis.call('SISMEMBER', KEYS[4], ARGV[2])
  m[#m + 1] = 'member'
  m[#m + 1] = tostring(member)
  if member == 0 then return m end
end
if ARGV[4] == '1' and (h['mode'] == 'axn' or h['mode'] == 'axg') then
  redis.call('HSET', KEYS[3], 'n', ARGV[2], 't', ARGV[1])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return m
`)
