// SPDX-License-Identifier: MIT
#include "patterns/rate_limiter.hpp"

#include "patterns/script.hpp"

#include <algorithm>
#include <array>
#include <tuple>
#include <system_error>
#include <vector>

namespace redring::patterns {
namespace {

// Every script: KEYS[1] is the name's one key, so a script touches one slot (cluster-safe).
// ARGV[1] limit, ARGV[2] period in ms, ARGV[3] cost, ARGV[4] now in µs since the epoch or "" for
// the server's TIME, ARGV[5] burst, ARGV[6] a unique member prefix (sliding log).
// Returns {allowed 0|1, remaining, reset_after ms, retry_after ms (0 allowed, -1 never)}.
// Atomic because a script runs alone on the server: the read, the decision and the write see no
// other client in between, so concurrent callers are serialised exactly.

// What the clocked scripts below start with: the arguments as numbers, times in µs, and `now`
// from the caller's clock or the server's TIME.
constexpr std::string_view prelude_lua = R"lua(
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]) * 1000, tonumber(ARGV[3])
local burst = tonumber(ARGV[5])
local now = tonumber(ARGV[4])
if not now then local t = redis.call('TIME'); now = t[1] * 1000000 + t[2] end
)lua";

// Fixed window: a counter whose TTL is the window (SET ... PX on the first hit, INCRBY after).
// A denied hit does not count. No clock: the window is the key's TTL.
constexpr std::string_view fixed_window_lua = R"lua(
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then used = 0; ttl = period end
if used + cost > limit then
  local retry = ttl
  if cost > limit then retry = -1 end
  if used == 0 then ttl = 0 end  -- no window open: nothing to wait for (a cost > limit, never)
  return {0, limit - used, ttl, retry}
end
if used == 0 then redis.call('SET', KEYS[1], cost, 'PX', period) else redis.call('INCRBY', KEYS[1], cost) end
return {1, limit - used - cost, ttl, 0}
)lua";

// Sliding log: one sorted-set member per cost unit, scored by its time in µs; members older than
// the window are dropped first. Exact: at most `limit` units in any window (now - period, now].
constexpr std::string_view sliding_log_lua = R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
local used = redis.call('ZCARD', KEYS[1])
if used + cost > limit then
  local retry = -1
  if cost <= limit then
    local i = used + cost - limit - 1
    local e = redis.call('ZRANGE', KEYS[1], i, i, 'WITHSCORES')
    retry = math.max(1, math.ceil((tonumber(e[2]) + period - now) / 1000))
  end
  local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  local reset = 0
  if newest[2] then reset = math.ceil((tonumber(newest[2]) + period - now) / 1000) end
  return {0, limit - used, reset, retry}
end
for i = 1, cost do redis.call('ZADD', KEYS[1], now, ARGV[6] .. ':' .. i) end
redis.call('PEXPIRE', KEYS[1], math.ceil(period / 1000))
return {1, limit - used - cost, math.ceil(period / 1000), 0}
)lua";

// Sliding window counter: a hash {w = window index, c = its count, p = the previous window's};
// the estimate is p weighted by how much of the previous window still overlaps, plus c.
constexpr std::string_view sliding_window_lua = R"lua(
local idx = math.floor(now / period)
local h = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w, cur, prev = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
if w == nil or w < idx - 1 then cur, prev = 0, 0
elseif w == idx - 1 then prev, cur = cur, 0
elseif w > idx then idx = w end
local elapsed = math.max(0, now - idx * period)
local estimate = prev * (period - elapsed) / period + cur
local function reset_ms(c)
  if c > 0 then return math.ceil((2 * period - elapsed) / 1000) end
  if prev > 0 then return math.ceil((period - elapsed) / 1000) end
  return 0
end
if estimate + cost > limit + 1e-9 then
  local retry = -1
  if cost <= limit then
    local t
    if cur + cost <= limit then
      t = (period - elapsed) - period * (limit - cur - cost) / prev
    else
      t = (period - elapsed) + period - period * (limit - cost) / cur
    end
    retry = math.max(1, math.ceil(t / 1000))
  end
  return {0, math.max(0, math.floor(limit - estimate + 1e-9)), reset_ms(cur), retry}
end
cur = cur + cost
redis.call('HSET', KEYS[1], 'w', idx, 'c', cur, 'p', prev)
redis.call('PEXPIRE', KEYS[1], math.ceil(2 * period / 1000))
return {1, math.max(0, math.floor(limit - estimate - cost + 1e-9)), reset_ms(cur), 0}
)lua";

// Token bucket: a hash {t = tokens, ts = when counted}; refilled by elapsed time at limit/period
// per µs, capped at burst. A missing key is a full bucket, so the key expires once it would be full.
// A clock that went back refills nothing.
constexpr std::string_view token_bucket_lua = R"lua(
local rate = limit / period
local h = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = tonumber(h[1]), tonumber(h[2])
if tokens == nil or ts == nil then tokens, ts = burst, now end
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate); ts = now end
if tokens + 1e-9 < cost then
  local retry = -1
  if cost <= burst then retry = math.max(1, math.ceil((cost - tokens) / rate / 1000)) end
  return {0, math.floor(tokens + 1e-9), math.ceil((burst - tokens) / rate / 1000), retry}
end
tokens = tokens - cost
local full = math.max(1, math.ceil((burst - tokens) / rate / 1000))
redis.call('HSET', KEYS[1], 't', tokens, 'ts', ts)
redis.call('PEXPIRE', KEYS[1], full)
return {1, math.floor(tokens + 1e-9), full, 0}
)lua";

// GCRA: the theoretical arrival time (TAT). Each unit moves it by the emission interval
// T = period/limit; a hit is admitted while the new TAT is at most burst*T ahead of now. The key (a
// hash) holds it as `b`, the `now` of the last write (whole µs: exact), and `o`, the TAT's lead on
// `b` (at most burst*T: small, so exact to far under a µs). An absolute TAT near 1.7e15 µs, as once
// stored, is exact only to 0.25 µs: an interval under 0.125 µs never moved it, and every hit passed.
// The key expires when the TAT passes (a missing key is a full allowance). `eps` absorbs rounding.
constexpr std::string_view gcra_lua = R"lua(
local interval = period / limit
local eps = math.min(1, interval / 1000000)
local tau = interval * burst
local st = redis.call('HMGET', KEYS[1], 'b', 'o')
local tat = 0
if st[1] and st[2] then tat = tonumber(st[2]) - (now - tonumber(st[1])) end
if tat < 0 then tat = 0 end
local new_tat = tat + interval * cost
local function ms(us) return math.max(0, math.ceil((us - eps) / 1000)) end
local function units(ahead) return math.max(0, math.floor((tau - ahead + eps) / interval)) end
if new_tat - tau > eps then
  local retry = -1
  if cost <= burst then retry = math.max(1, ms(new_tat - tau)) end
  return {0, units(tat), ms(tat), retry}
end
local reset = math.max(1, ms(new_tat))
redis.call('HSET', KEYS[1], 'b', string.format('%.17g', now), 'o', string.format('%.17g', new_tat))
redis.call('PEXPIRE', KEYS[1], reset)
return {1, units(new_tat), reset, 0}
)lua";

// Indexed by limiter_algorithm: the script and the key's tag.
// GCRA's is "gcra2": its key was a string (an absolute TAT) before it became a hash.
constexpr std::array<std::string_view, 5> tags = {"fw", "log", "sw", "tb", "gcra2"};

std::string with_prelude(std::string_view body) {
  std::string text(prelude_lua);
  text.append(body);
  return text;
}

const script& script_of(limiter_algorithm a) {
  static const std::array<std::string, 4> clocked = {with_prelude(sliding_log_lua), with_prelude(sliding_window_lua),
                                                     with_prelude(token_bucket_lua), with_prelude(gcra_lua)};
  static const std::array<script, 5> scripts = {script(fixed_window_lua), script(clocked[0]), script(clocked[1]),
                                                script(clocked[2]), script(clocked[3])};
  return scripts[static_cast<std::size_t>(a)];
}

std::string_view tag_of(limiter_algorithm a) { return tags[static_cast<std::size_t>(a)]; }

bool has_burst(limiter_algorithm a) {
  return a == limiter_algorithm::token_bucket || a == limiter_algorithm::gcra;
}

}  // namespace

rate_limiter::rate_limiter(client::client& c, limiter_options opts)
    : client_(c), opts_(std::move(opts)), member_prefix_(random_hex(8)) {
  if (opts_.burst <= 0) opts_.burst = opts_.limit;
}

std::string rate_limiter::key(std::string_view name) const {
  std::string k;
  k.reserve(opts_.prefix.size() + name.size() + 6);
  k.append(opts_.prefix).append(name).append(":").append(tag_of(opts_.algorithm));
  return k;
}

task<decision> rate_limiter::hit(std::string_view name, std::int64_t cost) {
  decision d;
  d.limit = has_burst(opts_.algorithm) ? opts_.burst : opts_.limit;
  // The scripts compute in Lua numbers (doubles), and Redis turns their results into integers with
  // a plain cast: past 2^53 units, figures come back wrong (an "unlimited" INT64_MAX limit once
  // reported remaining = INT64_MIN).
  constexpr std::int64_t max_units = std::int64_t{1} << 53;
  if (cost < 1 || opts_.limit < 1 || opts_.period.count() < 1 || cost > max_units || opts_.limit > max_units ||
      opts_.burst > max_units) {
    d.source = decision_source::failure;
    d.failure = resp::error{std::make_error_code(std::errc::invalid_argument),
                            cost < 1                                 ? "cost must be at least 1"
                            : opts_.limit < 1 || opts_.period.count() < 1 ? "limit and period must be at least 1 (unit, ms)"
                                                                     : "limit, burst and cost must be at most 2^53"};
    co_return d;
  }
  const std::array<std::string, 1> keys = {key(name)};
  if (auto cached = cached_denial(keys[0], cost)) co_return *cached;

  std::string member = member_prefix_;
  member.append(":").append(std::to_string(++sequence_));
  const std::array<std::string, 6> args = {std::to_string(opts_.limit),
                                           std::to_string(opts_.period.count()),
                                           std::to_string(cost),
                                           opts_.clock ? std::to_string(opts_.clock()) : std::string(),
                                           std::to_string(opts_.burst),
                                           std::move(member)};
  auto reply = co_await script_of(opts_.algorithm).run(client_, keys, args, opts_.timeout);
  using figures_t = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>;
  auto figures = reply ? resp::convert<figures_t>(*reply) : resp::result<figures_t>(reply.error());
  if (!figures) {
    d.source = decision_source::failure;
    d.failure = figures.error();
    d.allowed = opts_.on_failure == failure_policy::allow;
    d.remaining = d.allowed ? d.limit : 0;
    co_return d;
  }
  const auto [allowed, remaining, reset_ms, retry_ms] = *figures;
  d.allowed = allowed == 1;
  d.remaining = remaining;
  d.reset_after = std::chrono::milliseconds(reset_ms);
  d.retry_after = retry_ms < 0 ? decision::never : std::chrono::milliseconds(retry_ms);
  if (!d.allowed) remember_denial(keys[0], d, cost);
  co_return d;
}

task<resp::result<std::int64_t>> rate_limiter::reset(std::string_view name) {
  const std::string k = key(name);
  denied_.erase(k);
  co_return co_await client_.del(k).with_timeout(opts_.timeout);
}

// The deny cache's time: the caller's clock when it gave one (retry_after is measured on it: a
// caller clock that runs apart from this process's must not keep a denial the server would lift),
// else the steady clock.
net::clock::time_point rate_limiter::cache_now() const {
  if (opts_.clock) return net::clock::time_point(std::chrono::microseconds(opts_.clock()));
  return net::clock::now();
}

std::optional<decision> rate_limiter::cached_denial(const std::string& key, std::int64_t cost) {
  if (denied_.empty()) return std::nullopt;
  const auto it = denied_.find(key);
  if (it == denied_.end()) return std::nullopt;
  const auto now = cache_now();
  if (now >= it->second.until) {
    denied_.erase(it);
    return std::nullopt;
  }
  // A smaller cost than the one denied may fit already, and a larger one has a later retry_after
  // (or `never`) that only the server knows: only the denied cost is answered here.
  if (cost != it->second.cost) return std::nullopt;
  // The server's denial, aged by the time since: nothing was admitted meanwhile by this limiter.
  decision d = it->second.server_decision;
  const auto aged = std::chrono::ceil<std::chrono::milliseconds>(now - it->second.at);
  d.source = decision_source::deny_cache;
  d.retry_after = std::chrono::ceil<std::chrono::milliseconds>(it->second.until - now);
  d.reset_after = std::max(d.reset_after - aged, d.retry_after);
  return d;
}

void rate_limiter::remember_denial(const std::string& key, const decision& d, std::int64_t cost) {
  if (opts_.deny_cache_size == 0 || d.retry_after == decision::never) return;
  const auto now = cache_now();
  if (denied_.size() >= opts_.deny_cache_size) {
    std::erase_if(denied_, [now](const auto& e) { return e.second.until <= now; });
    if (denied_.size() >= opts_.deny_cache_size) return;
  }
  denied_[key] = denial{now + d.retry_after, now, cost, d};
}

}  // namespace redring::patterns
