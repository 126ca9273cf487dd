// SPDX-License-Identifier: MIT
#include "patterns/cache.hpp"

#include "patterns/error.hpp"
#include "patterns/script.hpp"

#include <array>
#include <tuple>
#include <random>

namespace redring::patterns {
namespace {

// A Lua function the read and the load's store share: the state a load starts from and its store
// must still find. `v` the value key's payload (or false), KEYS[first..] the markers of the tags
// the load names (see invalidate_tag_lua). The SHA1 of the payload ("" if none) and every marker's
// value ("" if none), so that an invalidate (a new tombstone) or an invalidate_tag of one of these
// tags (a new marker) since the read makes the store a no-op.
constexpr std::string_view state_lua = R"lua(
local function state_of(v, first)
  local s = v and redis.sha1hex(v) or ''
  for i = first, #KEYS do s = s .. '|' .. (redis.call('GET', KEYS[i]) or '') end
  return s
end
)lua";

// KEYS[1] the value key, KEYS[2..] the markers of the tags a load would store with; ARGV[1]
// stale_ttl in ms. Returns {payload or false, PTTL, state_of}: one round trip for the value, its age
// and the state a load's store must still find (see store_loaded_lua). The state only where a load
// may follow (a miss, a tombstone, or a value within stale_ttl of expiring): a fresh hit hashes and
// reads nothing more. Atomic, so the three describe one moment.
constexpr std::string_view read_lua = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then return {false, -2, state_of(false, 2)} end
local pttl = redis.call('PTTL', KEYS[1])
if string.sub(v, 1, 1) ~= '!' and pttl > tonumber(ARGV[1]) then return {v, pttl, ''} end
return {v, pttl, state_of(v, 2)}
)lua";

// A Lua function the scripts below begin with: an existing key lives at least `ttl` ms more (a
// missing one is left missing). Shared, so TTLs are stretched one way everywhere.
constexpr std::string_view stretch_lua = R"lua(
local function stretch(key, ttl)
  local left = redis.call('PTTL', key)
  if left ~= -2 and left < ttl then redis.call('PEXPIRE', key, ttl) end
end
)lua";

// The tags a value keeps, a Lua function: KEYS[1] the value key, KEYS[2] its tag list (the Redis
// keys of the tag sets of the last store that named tags), then the n tag sets this store names
// (KEYS[3..n+2]) and their n markers (unused here), as `cache::store_keys` lays them out. The sets
// replace the list (so a key re-tagged on every write keeps a bounded list); a store naming none
// keeps it. The value key goes back into every set of the list (an invalidate_tag deleted the set,
// not the key's membership), whose TTL, and the list's, is stretched to cover `ttl`. So a value
// stored again while the key still has state (a reload after an invalidation: the invalidations
// stretch the list over their tombstone; a stale refresh) stays reachable by its tags, whoever
// stores it. A set is a sorted set scored by when each member's value expires (server time, ms),
// and every store drops the members already expired: a tag written for ever holds the keys alive
// now, not every key it ever named. The sets are read inside the script: keys of the same
// {namespace} tag, hence the same slot (allowed on a cluster).
constexpr std::string_view tag_value_lua = R"lua(
local function tag_value(ttl)
  local n = (#KEYS - 2) / 2
  if n >= 1 then redis.call('DEL', KEYS[2]) end
  for i = 3, n + 2 do redis.call('SADD', KEYS[2], KEYS[i]) end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local expires = string.format('%.0f', now + ttl)
  local sets = redis.call('SMEMBERS', KEYS[2])
  for _, set in ipairs(sets) do
    redis.call('ZADD', set, expires, KEYS[1])
    redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. string.format('%.0f', now))
    stretch(set, ttl)
  end
  stretch(KEYS[2], ttl)
end
)lua";

// KEYS as tag_value's; ARGV[1] the payload, ARGV[2] its TTL in ms. Stores the value and tags it.
// Returns 1. Atomic: an invalidate_tag never sees the value without its tags.
constexpr std::string_view write_lua = R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
tag_value(tonumber(ARGV[2]))
return 1
)lua";

// KEYS as tag_value's; ARGV[1] the payload a load produced, ARGV[2] its TTL in ms, ARGV[3] the
// state the load started from (read_lua's third field). Stores (and tags) only if the key and the
// tags' markers are still in that state, and returns 1; else 0. Atomic compare-and-set: an
// invalidate, an invalidate_tag of a tag the load names (even if the key was in no tag set yet:
// a first load) or another store since the load began wins, so a load of data read before an
// invalidation never brings it back.
constexpr std::string_view store_loaded_lua = R"lua(
local cur = redis.call('GET', KEYS[1])
if state_of(cur, 3 + (#KEYS - 2) / 2) ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
tag_value(tonumber(ARGV[2]))
return 1
)lua";

// KEYS[1] the value key, KEYS[2] its tag list; ARGV[1] a tombstone (a unique payload), ARGV[2] its
// TTL in ms (lock_ttl: longer than a load may take). Replaces the value with the tombstone, which
// reads as a miss and fails the compare-and-set of every load begun before it, and keeps the tag
// list at least as long (the reload puts the value back into its tags). Returns 1 if a value was
// there.
constexpr std::string_view invalidate_lua = R"lua(
local cur = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
stretch(KEYS[2], tonumber(ARGV[2]))
if cur and string.sub(cur, 1, 1) ~= '!' then return 1 end
return 0
)lua";

// KEYS[1] a tag's set, KEYS[2] its marker; ARGV[1], ARGV[2] as invalidate_lua's, ARGV[3] the
// namespace's value-key prefix and ARGV[4] its tag-list prefix (a member's tag list is ARGV[4] ..
// its key). Puts a tombstone on every key in it, keeps each key's tag list as long, and deletes the
// set; returns how many keys held a value. The marker takes the tombstone for as long (lock_ttl,
// longer than a load may take): a load in flight for a key not in the set yet (its first) reads it
// before and finds it changed at its store, which it skips. Atomic: no reader sees some of the tag's keys gone and others still
// there. The members and their lists are keys of the same {namespace}, so the same slot as KEYS[1]
// (allowed on a cluster).
constexpr std::string_view invalidate_tag_lua = R"lua(
local keys = redis.call('ZRANGE', KEYS[1], 0, -1)
local ttl = tonumber(ARGV[2])
local n = 0
for i = 1, #keys do
  local cur = redis.call('GET', keys[i])
  if cur and string.sub(cur, 1, 1) ~= '!' then n = n + 1 end
  redis.call('SET', keys[i], ARGV[1], 'PX', ARGV[2])
  if string.sub(keys[i], 1, #ARGV[3]) == ARGV[3] then
    stretch(ARGV[4] .. string.sub(keys[i], #ARGV[3] + 1), ttl)
  end
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return n
)lua";

const script& read_script() {
  static const std::string text = std::string(state_lua).append(read_lua);
  static const script s(text);
  return s;
}
const script& write_script() {
  static const std::string text = std::string(stretch_lua).append(tag_value_lua).append(write_lua);
  static const script s(text);
  return s;
}
const script& store_loaded_script() {
  static const std::string text =
      std::string(stretch_lua).append(tag_value_lua).append(state_lua).append(store_loaded_lua);
  static const script s(text);
  return s;
}
const script& invalidate_script() {
  static const std::string text = std::string(stretch_lua).append(invalidate_lua);
  static const script s(text);
  return s;
}
const script& invalidate_tag_script() {
  static const std::string text = std::string(stretch_lua).append(invalidate_tag_lua);
  static const script s(text);
  return s;
}

// Payloads carry their kind in the first byte: '+' a value, '-' "does not exist", '!' invalidated
// (a tombstone: reads as a miss; its random rest makes every invalidation a new state).
constexpr char value_mark = '+';
constexpr char missing_mark = '-';
constexpr char tombstone_mark = '!';

}  // namespace

// One load in flight for a key in this process; later callers wait for its result.
struct cache::flight {
  std::uint64_t writes = 0;  // cache::writes_ when it began
  std::vector<std::coroutine_handle<>> waiters;
  std::optional<resp::result<cached>> result;

  struct join {
    flight& f;
    bool await_ready() const noexcept { return f.result.has_value(); }
    void await_suspend(std::coroutine_handle<> h) { f.waiters.push_back(h); }
    void await_resume() const noexcept {}
  };
};

cache::cache(client::client& c, cache_options opts)
    : client_(c),
      opts_(std::move(opts)),
      stampede_(c, lock_options{.ttl = opts_.lock_ttl, .wait = {}, .timeout = opts_.timeout,
                                .prefix = opts_.prefix + "lock:", .fencing = false}) {}

std::string cache::namespace_key(std::string_view kind, std::string_view name) const {
  std::string k;
  k.reserve(opts_.prefix.size() + opts_.space.size() + opts_.version.size() + kind.size() + name.size() + 8);
  k.append(opts_.prefix).append("{").append(opts_.space).append(":v").append(opts_.version).append("}:");
  k.append(kind).append(name);
  return k;
}

// Values and tag sets each have their kind ("v:", "tag:"), so no key names another's tag set (a
// value key of "tag:red" once was the tag set of "red").
std::string cache::value_key(std::string_view key) const { return namespace_key("v:", key); }
std::string cache::tag_key(std::string_view tag) const { return namespace_key("tag:", tag); }
std::string cache::tag_list_key(std::string_view key) const { return namespace_key("t:", key); }

std::string cache::tag_marker_key(std::string_view tag) const { return namespace_key("tm:", tag); }

std::vector<std::string> cache::store_keys(std::string_view key, std::span<const std::string> tags) const {
  std::vector<std::string> keys;
  keys.reserve(2 + 2 * tags.size());
  keys.push_back(value_key(key));
  keys.push_back(tag_list_key(key));
  for (const auto& t : tags) keys.push_back(tag_key(t));
  for (const auto& t : tags) keys.push_back(tag_marker_key(t));
  return keys;
}

std::chrono::milliseconds cache::jittered(std::chrono::milliseconds ttl) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const double cut = std::clamp(opts_.ttl_jitter, 0.0, 1.0) * std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(ttl.count()) * (1.0 - cut))));
}

task<resp::result<cached>> cache::get_or_load(std::string_view key, loader load, std::span<const std::string> tags) {
  std::string vk = value_key(key);
  // A flight begun before this process's last set/invalidate/invalidate_tag may bring what was
  // there before it (its read came first): a caller after the write starts a flight of its own.
  if (const auto it = flights_.find(vk); it != flights_.end() && it->second->writes == writes_) {
    const auto f = it->second;  // keeps the flight alive while we wait
    co_await flight::join{*f};
    co_return *f->result;
  }
  const auto f = std::make_shared<flight>();
  f->writes = writes_;
  flights_.insert_or_assign(vk, f);
  auto r = co_await fetch(vk, key, tags, load);
  f->result = r;
  if (const auto it = flights_.find(vk); it != flights_.end() && it->second == f) flights_.erase(it);
  for (const auto h : std::exchange(f->waiters, {})) h.resume();
  co_return r;
}

// The read path of one flight:
// 1. Read value and PTTL (one script). Redis failed: load without storing (fail-open).
// 2. Fresh hit: done. Stale hit (PTTL within stale_ttl): serve it, refresh in the background.
// 3. Miss: take the stampede lock and read again, both in one round trip; load if the key still
//    misses. Or, if another process holds the lock, poll for its value until lock_wait, then load
//    anyway (a stuck loader elsewhere must not stall us forever). The second read runs after the
//    lock on the server (one connection, in order), so it finds a value another process stored
//    between our miss and our lock (its load ended and it released the lock just then): one load,
//    not two. Held elsewhere, it is the first poll. (Once per server start, when the lock's script
//    is not yet in its cache, the lock's EVAL follows the read: a store in between costs a second
//    load, never a wrong value, since a load's store is a compare-and-set.)
// The keys a store needs (store_keys) are made only where a store may follow: a hit reads one key.
task<resp::result<cached>> cache::fetch(const std::string& vk, std::string_view key, std::span<const std::string> tags,
                                        const loader& load) {
  // The value key, then the markers of the tags a load would store with (read_lua).
  std::vector<std::string> read_keys;
  read_keys.reserve(1 + tags.size());
  read_keys.push_back(vk);
  for (const auto& t : tags) read_keys.push_back(tag_marker_key(t));
  const std::array<std::string, 1> stale = {std::to_string(std::max<std::int64_t>(0, opts_.stale_ttl.count()))};
  const auto deadline = net::deadline_after(net::clock::now(), opts_.lock_wait);
  bool lock_tried = false;
  std::optional<lease> held;  // the stampede lock, once this call holds it
  auto reply = co_await read_script().run(client_, read_keys, stale, opts_.timeout);
  for (;;) {
    using entry_t = std::tuple<std::optional<std::string>, std::int64_t, std::string>;
    auto entry = reply ? resp::convert<entry_t>(*reply) : resp::result<entry_t>(reply.error());
    if (!entry) {
      if (held) (void)co_await stampede_.release(*held);
      ++loads_;
      auto v = co_await load();
      if (!v) co_return resp::error{make_error_code(errc::load_failed), v.error().what()};
      co_return cached{std::move(*v), cache_source::degraded, entry.error()};
    }
    const auto& [payload, pttl, seen] = *entry;  // `seen`: what a load from here must still find
    if (payload && !payload->empty() && (*payload)[0] != tombstone_mark) {
      cached c;
      if ((*payload)[0] == value_mark) c.value.emplace(payload->substr(1));
      if (lock_tried) {
        c.source = cache_source::waited;
        if (held) (void)co_await stampede_.release(*held);
      } else if (opts_.stale_ttl.count() > 0 && pttl >= 0 && pttl <= opts_.stale_ttl.count() && c.value) {
        c.source = cache_source::stale;
        refresh(store_keys(key, tags), load, seen);
      }
      co_return c;
    }
    if (held) {
      auto r = co_await load_and_store(store_keys(key, tags), load, seen);
      (void)co_await stampede_.release(*held);
      co_return r;
    }
    if (!lock_tried) {
      lock_tried = true;
      auto [got, again] =
          co_await when_all(stampede_.acquire(vk), read_script().run(client_, read_keys, stale, opts_.timeout));
      if (got) {
        held.emplace(std::move(*got));
      } else if (got.error().code != errc::not_acquired) {
        co_return co_await load_and_store(store_keys(key, tags), load, seen);
      }
      reply = std::move(again);
      continue;
    }
    if (net::clock::now() >= deadline) co_return co_await load_and_store(store_keys(key, tags), load, seen);
    co_await sleep_for(client_.loop(), opts_.poll_interval);
    reply = co_await read_script().run(client_, read_keys, stale, opts_.timeout);
  }
}

// Loads and stores what was loaded, unless the key changed since it held `seen` (read_lua's SHA1):
// then the caller gets the loaded value, and the key keeps the newer state (an invalidation, say).
task<resp::result<cached>> cache::load_and_store(std::vector<std::string> keys, const loader& load,
                                                 std::string seen) {
  ++loads_;
  auto v = co_await load();
  if (!v) co_return resp::error{make_error_code(errc::load_failed), v.error().what()};
  cached c{std::move(*v), cache_source::loaded, {}};
  if (!c.value && opts_.negative_ttl.count() <= 0) co_return c;
  const auto ttl = c.value ? jittered(opts_.ttl) + opts_.stale_ttl : opts_.negative_ttl;
  const std::array<std::string, 3> args = {payload_of(c.value), std::to_string(ttl.count()), std::move(seen)};
  if (auto stored = co_await store_loaded_script().run(client_, keys, args, opts_.timeout); !stored) {
    c.source = cache_source::degraded;
    c.failure = stored.error();
  }
  co_return c;
}

std::string cache::payload_of(const std::optional<std::string>& value) {
  std::string payload(1, value ? value_mark : missing_mark);
  if (value) payload.append(*value);
  return payload;
}

task<resp::result<bool>> cache::store(std::vector<std::string> keys, std::optional<std::string> value) {
  if (!value && opts_.negative_ttl.count() <= 0) co_return false;
  const auto ttl = value ? jittered(opts_.ttl) + opts_.stale_ttl : opts_.negative_ttl;
  const std::array<std::string, 2> args = {payload_of(value), std::to_string(ttl.count())};
  auto r = co_await write_script().run(client_, keys, args, opts_.timeout);
  if (!r) co_return r.error();
  co_return true;
}

std::array<std::string, 2> cache::tombstone() const {
  return {std::string(1, tombstone_mark).append(random_hex(8)),
          std::to_string(std::max<std::int64_t>(1, opts_.lock_ttl.count()))};
}

// A stale value's reload: one per key in this process, and one across processes (the lock); a
// failed load leaves the stale value to expire by its hard TTL.
client::detached cache::refresh(std::vector<std::string> keys, loader load, std::string seen) {
  const std::string vk = keys[0];
  if (!refreshing_.insert(vk).second) co_return;
  if (auto held = co_await stampede_.acquire(vk)) {
    (void)co_await load_and_store(std::move(keys), load, std::move(seen));
    (void)co_await stampede_.release(*held);
  }
  refreshing_.erase(vk);
}

task<resp::result<bool>> cache::set(std::string_view key, std::string_view value, std::span<const std::string> tags) {
  ++writes_;  // see get_or_load
  co_return co_await store(store_keys(key, tags), std::optional<std::string>(value));
}

task<resp::result<bool>> cache::invalidate(std::string_view key) {
  ++writes_;  // see get_or_load
  const std::array<std::string, 2> keys = {value_key(key), tag_list_key(key)};
  const auto args = tombstone();
  auto r = co_await invalidate_script().run(client_, keys, args, opts_.timeout);
  if (!r) co_return r.error();
  auto n = resp::convert<std::int64_t>(*r);
  if (!n) co_return n.error();
  co_return *n > 0;
}

task<resp::result<std::int64_t>> cache::invalidate_tag(std::string_view tag) {
  ++writes_;  // see get_or_load
  const std::array<std::string, 2> keys = {tag_key(tag), tag_marker_key(tag)};
  const auto [tombstone_payload, tombstone_ttl] = tombstone();
  const std::array<std::string, 4> args = {tombstone_payload, tombstone_ttl, value_key(""), tag_list_key("")};
  auto r = co_await invalidate_tag_script().run(client_, keys, args, opts_.timeout);
  if (!r) co_return r.error();
  co_return resp::convert<std::int64_t>(*r);
}

}  // namespace redring::patterns
