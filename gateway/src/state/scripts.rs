//! The Lua scripts that change shared state. Each runs atomically on the Redis server and reads the server's
//! clock (`TIME`) or relies on key expiry (also the server's), never a replica's clock, so replicas with skewed
//! clocks still share one window.
//!
//! Windows are fixed windows opened by their first use, as [`crate::limits::window::Window`] is in memory: a key
//! holding the count, expiring when the window ends (`PTTL` is the time until it resets).

use std::sync::LazyLock;

use redis::Script;

/// Client requests/min as GCRA (the memory backend's governor quota, burst = the limit) and tokens/min as a
/// window, checked together; a request is counted only when admitted.
///
/// KEYS[1] the GCRA theoretical arrival time (microseconds), KEYS[2] the tokens window.
/// ARGV[1] requests per minute (0: none), ARGV[2] tokens per minute (0: none).
/// Returns `{0, 0}` admitted, `{1, wait_ms}` over requests/min, `{2, wait_ms}` over tokens/min.
pub static CLIENT_ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local tpm = tonumber(ARGV[2])
if tpm > 0 then
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used >= tpm then
    local ttl = redis.call('PTTL', KEYS[2])
    if ttl < 0 then ttl = 0 end
    return {2, ttl}
  end
end
local rpm = tonumber(ARGV[1])
if rpm > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local period = 60000000
  local step = period / rpm
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  local new = tat + step
  if new - now > period then
    return {1, math.ceil((new - now - period) / 1000)}
  end
  redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1)
end
return {0, 0}
",
    )
});

/// Adds ARGV[1] to every window of KEYS, opening a window (its expiry ARGV[i+1] ms) on first use. Returns what
/// each window has used.
pub static WINDOWS_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('INCRBY', k, ARGV[1])
  if redis.call('PTTL', k) < 0 then redis.call('PEXPIRE', k, ARGV[i + 1]) end
  out[i] = v
end
return out
",
    )
});

/// Provider budgets: KEYS[1] requests/min, KEYS[2] tokens/min, KEYS[3] tokens/day; ARGV[1..3] their limits (0:
/// none), ARGV[4] `1` to take one request when none is used up (`0`: only look), ARGV[5] the requests window in
/// ms. Returns `{0, requests used}` when there is room (and, with ARGV[4] = 1, one was taken), `{1, wait_ms}` when
/// a budget is used up (the longest wait).
pub static BUDGET_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local wait = -1
for i = 1, 3 do
  local lim = tonumber(ARGV[i])
  if lim > 0 then
    local used = tonumber(redis.call('GET', KEYS[i]) or '0')
    if used >= lim then
      local ttl = redis.call('PTTL', KEYS[i])
      if ttl < 0 then ttl = 0 end
      if ttl > wait then wait = ttl end
    end
  end
end
if wait >= 0 then return {1, wait} end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[4] == '1' and tonumber(ARGV[1]) > 0 then
  used = redis.call('INCR', KEYS[1])
  if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
end
return {0, used}
",
    )
});

/// Gives back one request taken by [`BUDGET_ACQUIRE`] (the call was not made). KEYS[1] the window.
pub static BUDGET_REFUND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then return redis.call('DECR', KEYS[1]) end
return 0
",
    )
});

/// For each window of KEYS: `{used, ms until it resets (-1: not open)}`, flattened.
pub static WINDOWS_STATUS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for i, k in ipairs(KEYS) do
  out[2 * i - 1] = tonumber(redis.call('GET', k) or '0')
  local ttl = redis.call('PTTL', k)
  if ttl < 0 then ttl = -1 end
  out[2 * i] = ttl
end
return out
",
    )
});

/// A provider's breaker and cooldown: whether a call may go out now. KEYS[1] the provider's health hash
/// (`state` 0 closed, 1 open, 2 half-open; `opened_at`, `probe_started`, `cooldown_until` in server ms;
/// `cooldown_reason`). ARGV[1] `open_for` in ms, ARGV[2] `1` to only look (no transition, no probe started).
///
/// Returns `{decision, cooldown ms left, cooldown reason, breaker state}`: decision 0 allowed, 1 allowed as the
/// half-open probe (started here: no other replica gets one until it ends or `open_for` passes), 2 breaker open
/// (or another replica holds the probe), 3 cooling down. The state is the stored one when only looking, else the
/// one after the call.
pub static HEALTH_ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'probe_started', 'cooldown_until', 'cooldown_reason')
local state = tonumber(h[1] or '0')
local opened = tonumber(h[2] or '0')
local probe = h[3] and tonumber(h[3])
local cd = tonumber(h[4] or '0')
local reason = h[5] or ''
local open_for = tonumber(ARGV[1])
local peek = ARGV[2] == '1'
if cd > now then return {3, cd - now, reason, state} end
if cd > 0 and not peek then redis.call('HDEL', KEYS[1], 'cooldown_until', 'cooldown_reason') end
if state == 0 then return {0, 0, '', state} end
if state == 1 then
  if now >= opened + open_for then
    if peek then return {1, 0, '', state} end
    redis.call('HSET', KEYS[1], 'state', 2, 'probe_started', now)
    return {1, 0, '', 2}
  end
  return {2, 0, '', state}
end
if probe and now < probe + open_for then return {2, 0, '', state} end
if not peek then redis.call('HSET', KEYS[1], 'probe_started', now) end
return {1, 0, '', state}
",
    )
});

/// Records an outcome of a call to a provider, as [`crate::router::Health`] does in memory. KEYS[1] the health
/// hash, KEYS[2] and KEYS[3] the outcomes in the breaker window (all, failed; sorted by server ms).
/// ARGV[1] `success`, `failure` or `release` (the probe's answer said nothing: let the next call probe);
/// ARGV[2] `1` when the failure counts for the breaker; ARGV[3] the cooldown it starts in ms (0: none); ARGV[4]
/// its reason; ARGV[5] the breaker window in ms; ARGV[6] `min_requests`; ARGV[7] `failure_ratio` in thousandths.
///
/// Returns `{breaker state after, 1 when a cooldown started or was extended}`.
pub static HEALTH_RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind = ARGV[1]
local state = tonumber(redis.call('HGET', KEYS[1], 'state') or '0')
redis.call('HDEL', KEYS[1], 'probe_started')
if kind == 'release' then return {state, 0} end
local window = tonumber(ARGV[5])
local cooling = 0
if kind == 'failure' then
  local d = tonumber(ARGV[3])
  if d > 0 then
    local till = now + d
    local cur = tonumber(redis.call('HGET', KEYS[1], 'cooldown_until') or '0')
    if cur < till then
      redis.call('HSET', KEYS[1], 'cooldown_until', till, 'cooldown_reason', ARGV[4])
      cooling = 1
    end
  end
end
local function clear()
  redis.call('DEL', KEYS[2], KEYS[3])
end
local function open()
  redis.call('HSET', KEYS[1], 'state', 1, 'opened_at', now)
  clear()
  return {1, cooling}
end
local function push(failed)
  local m = now .. ':' .. redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZADD', KEYS[2], now, m)
  if failed then redis.call('ZADD', KEYS[3], now, m) end
  local old = '(' .. (now - window)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', old)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', old)
  redis.call('PEXPIRE', KEYS[2], window + 1000)
  redis.call('PEXPIRE', KEYS[3], window + 1000)
end
if kind == 'success' then
  if state ~= 0 then
    redis.call('HSET', KEYS[1], 'state', 0)
    clear()
  end
  push(false)
  return {0, cooling}
end
local failed = ARGV[2] == '1'
if state == 2 then
  if failed then return open() end
  redis.call('HSET', KEYS[1], 'state', 0)
  clear()
  return {0, cooling}
end
if state == 1 then return {1, cooling} end
push(failed)
local total = redis.call('ZCARD', KEYS[2])
local failures = redis.call('ZCARD', KEYS[3])
if failed and total >= tonumber(ARGV[6]) and failures * 1000 >= tonumber(ARGV[7]) * total then return open() end
return {0, cooling}
",
    )
});

/// Stores one answer in the shared cache tier, bounded by bytes and entries (earliest expiry goes first).
///
/// KEYS[1] the entry, KEYS[2] the expiry index (sorted set of members by server ms), KEYS[3] the sizes (hash
/// member -> bytes), KEYS[4] the byte total. ARGV[1] the member (the entry key is ARGV[6] .. member), ARGV[2] the
/// answer, ARGV[3] how long it is kept in ms, ARGV[4] `max_bytes`, ARGV[5] `max_entries`, ARGV[6] the entry key
/// prefix. Entries Redis expired are forgotten from the index as puts pass them (at most 64 per put). Returns 1
/// when stored, 0 when the answer alone is over `max_bytes`.
pub static CACHE_PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, value, prefix = ARGV[1], ARGV[2], ARGV[6]
local keep, max_bytes, max_entries = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local bytes = tonumber(redis.call('GET', KEYS[4]) or '0')
local function drop(m)
  bytes = bytes - tonumber(redis.call('HGET', KEYS[3], m) or '0')
  redis.call('HDEL', KEYS[3], m)
  redis.call('ZREM', KEYS[2], m)
  redis.call('DEL', prefix .. m)
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 64)) do drop(m) end
if redis.call('HEXISTS', KEYS[3], member) == 1 then drop(member) end
local size = string.len(value)
local stored = 0
if size <= max_bytes then
  while bytes + size > max_bytes or redis.call('ZCARD', KEYS[2]) >= max_entries do
    local first = redis.call('ZRANGE', KEYS[2], 0, 0)
    if #first == 0 then
      bytes = 0
      break
    end
    drop(first[1])
  end
  redis.call('SET', KEYS[1], value, 'PX', keep)
  redis.call('ZADD', KEYS[2], now + keep, member)
  redis.call('HSET', KEYS[3], member, size)
  bytes = bytes + size
  stored = 1
end
if bytes < 0 then bytes = 0 end
redis.call('SET', KEYS[4], bytes)
return stored
",
    )
});
