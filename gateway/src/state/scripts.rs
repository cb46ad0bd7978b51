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
