// SPDX-License-Identifier: MIT
// A cache-aside cache: get_or_load with single-flight in the process and a stampede lock across
// processes, TTL jitter, stale-while-revalidate, negative caching, tags, a version in the key
// namespace, write-through and delete-on-write, and fail-open when Redis is down.
#pragma once

#include "client/client.hpp"
#include "patterns/lock.hpp"
#include "patterns/task.hpp"

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace redring::patterns {

/// Settings of a `cache`.
struct cache_options {
  std::string prefix;                          ///< Per environment, e.g. "prod:" (keys: prefix + "{" + space + ":v" + version + "}:" ...).
  std::string space = "cache";                 ///< The cache's name within the prefix.
  std::string version = "1";                   ///< Part of every key: change it to invalidate everything.
  std::chrono::milliseconds ttl{60000};        ///< How long a loaded value is fresh.
  double ttl_jitter = 0.1;                     ///< Each TTL is shortened at random by up to this fraction (spreads expiries).
  std::chrono::milliseconds stale_ttl{0};      ///< After `ttl`, served stale this long while one caller reloads (0: off).
  std::chrono::milliseconds negative_ttl{5000};///< How long "not found" is remembered (0: not cached).
  std::chrono::milliseconds lock_ttl{5000};    ///< Stampede lock: how long one process may take to load.
  std::chrono::milliseconds lock_wait{2000};   ///< Others wait this long for that load, then load themselves.
  std::chrono::milliseconds poll_interval{10}; ///< How often a waiting process looks for the value.
  std::chrono::milliseconds timeout{500};      ///< Per command; then the cache fails open (0: the client's default).
};

/// What a loader returns: the value, nullopt when the thing does not exist (cached negatively),
/// or an error (not cached; a stale value is served if there is one).
using load_result = resp::result<std::optional<std::string>>;
/// Loads a value from the source of truth. Called at most once per key per flight.
using loader = std::function<task<load_result>()>;

/// Where a value came from.
enum class cache_source : std::uint8_t {
  hit,         ///< Fresh in Redis.
  stale,       ///< Past its TTL, within stale_ttl: served while a refresh runs in the background.
  loaded,      ///< This call ran the loader and stored the value.
  waited,      ///< Another process stored the value while this call waited for or took the stampede lock.
  degraded,    ///< Redis failed: the loader's value, not stored; `failure` says why.
};

/// The outcome of `get_or_load`.
struct cached {
  std::optional<std::string> value;  ///< nullopt: the thing does not exist (possibly a negative hit).
  /// Where the value came from: Redis (fresh or stale), this call's load, another process's load,
  /// or the loader alone because Redis failed.
  cache_source source = cache_source::hit;
  std::optional<resp::error> failure;  ///< Set when Redis failed (the value is the loader's).
};

/// Cache-aside over one client. Loop thread only; the client must outlive it, and it must outlive
/// every operation and background refresh (`refreshing()`).
class cache {
 public:
  /// A cache on `c`.
  cache(client::client& c, cache_options opts);

  /// The value of `key`: from Redis if fresh; otherwise loaded by exactly one caller in this process
  /// (others wait for it: single-flight) and, across processes, by the holder of a stampede lock
  /// (others poll for the value up to `lock_wait`, or serve stale). When Redis fails, the loader's
  /// value is returned with `failure` set (fail-open). An error only when the loader failed and
  /// nothing stale could be served. `key` and `tags` must outlive the co_await; `load` is copied.
  /// `tags`, as `set`'s, go with a value this call stores (a load). A store naming no tags keeps the
  /// key's last ones (its tag list), while the key has a value or a tombstone: reloads after an
  /// invalidation and stale refreshes stay reachable by `invalidate_tag`. After a plain expiry only
  /// the tags named here apply. Concurrent callers of one key share the first one's flight, and its
  /// tags, unless this cache ran a `set`, `invalidate` or `invalidate_tag` since that flight began.
  [[nodiscard]] task<resp::result<cached>> get_or_load(std::string_view key, loader load,
                                                       std::span<const std::string> tags = {});

  /// Write-through: stores `value` for `key` (fresh for the TTL, jittered) and adds it to `tags`.
  [[nodiscard]] task<resp::result<bool>> set(std::string_view key, std::string_view value,
                                             std::span<const std::string> tags = {});
  /// Delete-on-write: removes `key`'s value, so the next read loads it; true if there was one. The
  /// value is replaced by a tombstone for `lock_ttl`, which reads as a miss and keeps a load begun
  /// before (with data read before the write) from storing its value afterwards.
  [[nodiscard]] task<resp::result<bool>> invalidate(std::string_view key);
  /// Removes the value of every key stored with `tag` (tombstones, as `invalidate`), and the tag,
  /// in one atomic script: how many keys held a value. A load in flight that names `tag` does not
  /// store what it loaded (the tag's marker changed), even for a key in no tag set yet.
  [[nodiscard]] task<resp::result<std::int64_t>> invalidate_tag(std::string_view tag);

  /// Switches to another version of the namespace: every key written under the old one is
  /// ignored from now on (and expires by its TTL). Other processes switch when they are told.
  void set_version(std::string version) { opts_.version = std::move(version); }

  /// The Redis key holding `key`'s value.
  [[nodiscard]] std::string value_key(std::string_view key) const;
  /// The Redis key of `tag`'s set of keys.
  [[nodiscard]] std::string tag_key(std::string_view tag) const;
  /// The Redis key of `key`'s tag list: the tag sets of the last store that named tags (a set of
  /// `tag_key`s, expiring with the value or its tombstone), which every store puts the value back into.
  [[nodiscard]] std::string tag_list_key(std::string_view key) const;
  /// The Redis key of `tag`'s marker: the tombstone of its last `invalidate_tag`, for `lock_ttl`.
  [[nodiscard]] std::string tag_marker_key(std::string_view tag) const;
  /// The Redis key of `key`'s stampede lock: prefix + "lock:" + `value_key(key)` + ":lock" (in the
  /// namespace's slot, like the value; see `lock::key`).
  [[nodiscard]] std::string lock_key(std::string_view key) const { return stampede_.key(value_key(key)); }
  /// Background refreshes of stale values still running. The cache (and its client) must outlive
  /// them: before destroying it, run the loop until this is 0.
  [[nodiscard]] std::size_t refreshing() const noexcept { return refreshing_.size(); }
  /// How many times this cache ran a loader (single-flight and stampede tests, metrics).
  [[nodiscard]] std::uint64_t loads() const noexcept { return loads_; }

 private:
  struct flight;
  // A value's keys for the storing scripts: value key, tag list key, the sets of `tags`, their markers.
  std::vector<std::string> store_keys(std::string_view key, std::span<const std::string> tags) const;
  task<resp::result<cached>> fetch(const std::string& value_key, std::string_view key, std::span<const std::string> tags,
                                   const loader& load);
  task<resp::result<cached>> load_and_store(std::vector<std::string> keys, const loader& load, std::string seen);
  task<resp::result<bool>> store(std::vector<std::string> keys, std::optional<std::string> value);
  static std::string payload_of(const std::optional<std::string>& value);
  std::array<std::string, 2> tombstone() const;  // invalidate's ARGV: a unique tombstone, its TTL
  client::detached refresh(std::vector<std::string> keys, loader load, std::string seen);
  std::chrono::milliseconds jittered(std::chrono::milliseconds ttl);
  std::string namespace_key(std::string_view kind, std::string_view name) const;

  client::client& client_;
  cache_options opts_;
  lock stampede_;
  std::unordered_map<std::string, std::shared_ptr<flight>> flights_;
  std::unordered_set<std::string> refreshing_;  // keys with a background refresh running
  std::uint64_t loads_ = 0;
  // Writes begun in this process (set, invalidate, invalidate_tag): a flight remembers the count it
  // began at, and later callers join it only if no write came since.
  std::uint64_t writes_ = 0;
};

}  // namespace redring::patterns
