package binding

import "github.com/redis/go-redis/v9"

// The AXE scripts. Every one touches the keys of one virtual number only.
// X's extensions live in one hash (store.ExtensionsKey: extension → JSON
// record {id, a, exp, rel, qend, rec, max, ring}), their last callers in
// another (store.ExtensionLastKey: extension → "ms|number"), so that
// allocating a free extension, resolving an entered one and replying to
// an extension's last caller each name fixed keys.

// createExtScript binds owner A to an extension on X (AXE), unless X is
// not an active pool number, is reserved for another mode, is held by
// another exclusive mode, carries AXB pairs (live or quarantined), uses
// another extension length, or A already holds X (active or quarantined).
// A chosen extension must be free ('taken' otherwise); without one the
// script probes from a random start for an extension that is free (never
// used, or its quarantine over), 'full' when none is. It raises the hold
// on X ('holder' axe) to the end of this binding's quarantine, and X's
// mode record's expiry to this binding's.
//
// KEYS: 1 number, 2 mode record, 3 route A, 4 binding, 5 active set,
// 6 extensions, 7 extensions' last callers.
// ARGV: 1 now ms, 2 expiry ms, 3 quarantine ms, 4 id, 5 a, 6 x, 7 record,
// 8 max duration s, 9 ring timeout s, 10 order id, 11 area, 12 digits,
// 13 chosen extension (” for any), 14 probe start (1..max), 15 max
// extensions (10^digits - 1).
// Returns {result, detail}: 'ok' and the extension; 'held'/'shared' and
// the end of the hold or mark (ms); 'full' and when the first extension's
// quarantine ends (ms, ” if unknown); 'digits' and X's length; another
// refusal and ”.
var createExtScript = redis.NewScript(`
local n = redis.call('HMGET', KEYS[1], 'state', 'mode', 'held', 'shared', 'holder')
if not n[1] then return {'unknown', ''} end
if n[1] ~= 'active' then return {'retired', ''} end
if n[2] and n[2] ~= 'axe' then return {'reserved', ''} end
local now = tonumber(ARGV[1])
local held = n[3] and tonumber(n[3]) > now
if held and n[5] ~= 'axe' then return {'held', n[3]} end
if not held then
  if n[4] and tonumber(n[4]) > now then return {'shared', n[4]} end
  if redis.call('EXISTS', KEYS[5]) == 1 then
    return {'shared', tostring(now + redis.call('PTTL', KEYS[5]))}
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'busy_a', ''} end
local m = redis.call('HMGET', KEYS[2], 'mode', 'digits', 'exp')
if held and m[1] == 'axe' and m[2] ~= ARGV[12] then return {'digits', m[2] or ''} end
if not held or m[1] ~= 'axe' then
  redis.call('DEL', KEYS[2], KEYS[6], KEYS[7])
  m = {false, false, false}
end
local function free(e)
  local v = redis.call('HGET', KEYS[6], e)
  if not v then return true end
  return tonumber(cjson.decode(v).qend) <= now
end
local maxe = tonumber(ARGV[15])
local ext = ARGV[13]
if ext ~= '' then
  if not free(ext) then return {'taken', ext} end
else
  if redis.call('HLEN', KEYS[6]) >= maxe then
    local all = redis.call('HGETALL', KEYS[6])
    local soonest = false
    for i = 1, #all, 2 do
      local q = tonumber(cjson.decode(all[i + 1]).qend)
      if q <= now then
        redis.call('HDEL', KEYS[6], all[i])
        redis.call('HDEL', KEYS[7], all[i])
      elseif not soonest or q < soonest then
        soonest = q
      end
    end
    if redis.call('HLEN', KEYS[6]) >= maxe then return {'full', tostring(soonest)} end
  end
  local start = tonumber(ARGV[14])
  local fmt = '%0' .. ARGV[12] .. 'd'
  for k = 0, maxe - 1 do
    local e = string.format(fmt, (start - 1 + k) % maxe + 1)
    if free(e) then ext = e break end
  end
  if ext == '' then return {'full', ''} end
end
local keep = tonumber(ARGV[2]) - now + tonumber(ARGV[3])
local untilq = tonumber(ARGV[2]) + tonumber(ARGV[3])
if not held or tonumber(n[3]) < untilq then
  redis.call('HSET', KEYS[1], 'held', untilq, 'holder', 'axe')
end
local mexp = tonumber(ARGV[2])
if m[3] and tonumber(m[3]) > mexp then mexp = tonumber(m[3]) end
redis.call('HSET', KEYS[2], 'mode', 'axe', 'digits', ARGV[12], 'exp', mexp, 'rel', '0')
if redis.call('PTTL', KEYS[2]) < keep then redis.call('PEXPIRE', KEYS[2], keep) end
redis.call('HSET', KEYS[3], 'id', ARGV[4], 'peer', '', 'exp', ARGV[2], 'rel', '0', 'allow', '1',
  'rec', ARGV[7], 'max', ARGV[8], 'ring', ARGV[9], 'mode', 'axe', 'last', '1', 'ext', ext)
redis.call('PEXPIRE', KEYS[3], keep)
redis.call('HSET', KEYS[4], 'a', ARGV[5], 'b', '', 'x', ARGV[6], 'created', ARGV[1],
  'exp', ARGV[2], 'rel', '0', 'rec', ARGV[7], 'max', ARGV[8], 'ring', ARGV[9],
  'dir', 'both', 'order', ARGV[10], 'area', ARGV[11], 'q', ARGV[3], 'mode', 'axe', 'ext', ext)
redis.call('PEXPIRE', KEYS[4], keep)
redis.call('HSET', KEYS[6], ext, cjson.encode({id = ARGV[4], a = ARGV[5], exp = ARGV[2], rel = '0',
  qend = tostring(untilq), rec = ARGV[7], max = ARGV[8], ring = ARGV[9]}))
if redis.call('PTTL', KEYS[6]) < keep then redis.call('PEXPIRE', KEYS[6], keep) end
redis.call('HDEL', KEYS[7], ext)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[4])
if redis.call('PTTL', KEYS[5]) < keep then redis.call('PEXPIRE', KEYS[5], keep) end
return {'ok', ext}
`)

// releaseExtScript ends an AXE binding now: its route, binding and
// extension go into quarantine (the extension is not handed out again
// before its end) and its last caller is dropped. The hold on X already
// covers the quarantine.
//
// KEYS: 1 binding, 2 route A, 3 active set, 4 extensions, 5 extensions'
// last callers.
// ARGV: 1 now ms, 2 quarantine ms, 3 id, 4 extension.
var releaseExtScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'exp', 'rel')
if not h[1] then return 'not_found' end
if h[2] == '1' then return 'released' end
local now = tonumber(ARGV[1])
if tonumber(h[1]) <= now then return 'expired' end
redis.call('HSET', KEYS[1], 'exp', ARGV[1], 'rel', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if redis.call('HGET', KEYS[2], 'id') == ARGV[3] then
  redis.call('HSET', KEYS[2], 'exp', ARGV[1], 'rel', '1')
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
redis.call('ZREM', KEYS[3], ARGV[3])
local v = redis.call('HGET', KEYS[4], ARGV[4])
if v then
  local r = cjson.decode(v)
  if r.id == ARGV[3] then
    r.exp, r.rel, r.qend = ARGV[1], '1', tostring(now + tonumber(ARGV[2]))
    redis.call('HSET', KEYS[4], ARGV[4], cjson.encode(r))
    redis.call('HDEL', KEYS[5], ARGV[4])
  end
end
return 'ok'
`)

// extendExtScript pushes an active AXE binding's expiry to ARGV[2]: its
// binding, route, extension and active-set entry, X's mode record and the
// hold on X.
//
// KEYS: 1 binding, 2 route A, 3 active set, 4 number, 5 mode record,
// 6 extensions.
// ARGV: 1 now ms, 2 new expiry ms, 3 quarantine ms, 4 id, 5 extension.
var extendExtScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'exp', 'rel')
if not h[1] then return 'not_found' end
if h[2] == '1' then return 'released' end
if tonumber(h[1]) <= tonumber(ARGV[1]) then return 'expired' end
local keep = tonumber(ARGV[2]) - tonumber(ARGV[1]) + tonumber(ARGV[3])
local untilq = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'exp', ARGV[2])
redis.call('PEXPIRE', KEYS[1], keep)
if redis.call('HGET', KEYS[2], 'id') == ARGV[4] then
  redis.call('HSET', KEYS[2], 'exp', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], keep)
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[4])
if redis.call('PTTL', KEYS[3]) < keep then redis.call('PEXPIRE', KEYS[3], keep) end
local v = redis.call('HGET', KEYS[6], ARGV[5])
if v then
  local r = cjson.decode(v)
  if r.id == ARGV[4] then
    r.exp, r.qend = ARGV[2], tostring(untilq)
    redis.call('HSET', KEYS[6], ARGV[5], cjson.encode(r))
    if redis.call('PTTL', KEYS[6]) < keep then redis.call('PEXPIRE', KEYS[6], keep) end
  end
end
local held = redis.call('HGET', KEYS[4], 'held')
if not held or tonumber(held) < untilq then redis.call('HSET', KEYS[4], 'held', untilq, 'holder', 'axe') end
local mexp = redis.call('HGET', KEYS[5], 'exp')
if mexp and tonumber(mexp) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[5], 'exp', ARGV[2]) end
if redis.call('PTTL', KEYS[5]) < keep then redis.call('PEXPIRE', KEYS[5], keep) end
return 'ok'
`)

// resolveExtScript answers "caller entered extension E on X" in one round
// trip: the extension's record, and with ARGV[5] = 1 records the caller as
// the extension's last caller when the extension is live (and the caller
// is not its own party).
//
// KEYS: 1 extensions, 2 extensions' last callers.
// ARGV: 1 now ms, 2 extension, 3 caller, 4 reply window ms, 5 record (0/1).
// Returns a flat field/value list: {} for an unknown extension; id and
// 'ended' for a released or expired one; else id, a and the options.
var resolveExtScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[2])
if not v then return {} end
local r = cjson.decode(v)
if r.rel == '1' or tonumber(r.exp) <= tonumber(ARGV[1]) then return {'id', r.id, 'ended', '1'} end
if ARGV[5] == '1' and r.a ~= ARGV[3] then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1] .. '|' .. ARGV[3])
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
end
return {'id', r.id, 'a', r.a, 'rec', r.rec, 'max', r.max, 'ring', r.ring}
`)
