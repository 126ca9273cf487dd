// SPDX-License-Identifier: MIT
// Client-side caching: values of GET kept in the process, exact by Redis's invalidation messages
// (CLIENT TRACKING, RESP3). https://redis.io/docs/latest/develop/reference/client-side-caching/
#pragma once

#include "client/client.hpp"
#include "patterns/task.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace redring::patterns {

/// Settings of a `local_cache`.
struct local_cache_options {
  std::size_t max_entries = 10000;           ///< Past it, the least recently used key is dropped.
  std::size_t max_bytes = 64 * 1024 * 1024;  ///< Keys and values together; past it, as above.
  /// Oldest a value may be when served (0: as long as no invalidation came). A bound on staleness
  /// should an invalidation be lost in a way the cache cannot see (none is known with RESP3).
  std::chrono::milliseconds max_age{0};
};

/// What a `local_cache` did so far.
struct local_cache_stats {
  std::uint64_t hits = 0;           ///< Answered in the process (no round trip).
  std::uint64_t misses = 0;         ///< Sent to the server.
  std::uint64_t invalidations = 0;  ///< Keys dropped by the server's invalidation messages.
  std::uint64_t flushes = 0;        ///< Times everything was dropped: a flush on the server, or a connection lost.
  std::uint64_t evictions = 0;      ///< Keys dropped for `max_entries` or `max_bytes`.
  std::size_t entries = 0;          ///< Keys held now.
  std::size_t bytes = 0;            ///< Their keys' and values' bytes.
};

/// GET with the values kept in the process: a key read once is answered without a round trip until
/// the server says it changed. The client must have been made with `options::tracking.enabled`
/// (`?tracking=yes`), so that each of its connections sends `CLIENT TRACKING ON` and the server
/// pushes an `invalidate` message for each key a connection read once it changes, expires or is
/// evicted (null: the database was flushed). These arrive on that connection, in order with its
/// replies, so a value is never kept past the invalidation of the write that followed its read.
///
/// What the cache cannot see it does not serve: every value is dropped when any of the client's
/// connections is lost (its tracked keys go with it; `client::connection_losses`), and a read is
/// not kept if a connection was lost while it was in flight. Absent keys are kept too (as nullopt).
/// With `tracking.broadcast` and prefixes, only keys under a prefix are kept (others would never be
/// invalidated); the others are read from the server each time.
///
/// Read-your-writes: the invalidation of a write this client makes arrives just after the write's
/// reply, so a `get` in the same turn may still see the old value: write with `set`, or call
/// `forget(key)` after the write's reply (a GET on another connection of the pool may have stored
/// the old value while the write was in flight). Writes by anyone else are seen when their
/// invalidation arrives.
///
/// Expiry: Redis invalidates an expiring key only when it deletes it (lazily, or by its sampling
/// expiry cycle), so each miss reads PTTL with the GET (same write) and the local copy ends at the
/// key's deadline counted from the send. SWAPDB sends no invalidation (Redis 7): `clear()` after one.
///
/// The cache is the client's push handler while it lives (`client::set_push_handler`); every push
/// is also passed to `next` (pub/sub, other invalidations). One per client. Loop thread only; the
/// client must outlive the cache, and the cache every `get` in flight.
class local_cache {
 public:
  /// A cache in front of `c`. Throws std::invalid_argument if `c` was not made with tracking on.
  explicit local_cache(client::client& c, local_cache_options opts = {}, client::push_handler next = {});
  ~local_cache();
  local_cache(const local_cache&) = delete;
  local_cache& operator=(const local_cache&) = delete;

  /// The value of `key`: from the process if held (and no connection was lost since, and its TTL
  /// has not passed), else by GET (with PTTL, one round trip), kept for the next call. nullopt: no
  /// such key. A key that is not a string: the server's WRONGTYPE error, nothing kept.
  [[nodiscard]] task<resp::result<std::optional<std::string>>> get(std::string_view key);
  /// SET `key` `value`, the local copy dropped before and after (see read-your-writes above).
  [[nodiscard]] task<resp::result<bool>> set(std::string_view key, std::string_view value);
  /// Drops the local copy of `key` (nothing is sent).
  void forget(std::string_view key);
  /// Drops every local copy (nothing is sent).
  void clear();

  /// Counters, and the size now.
  [[nodiscard]] local_cache_stats stats() const noexcept;
  /// True if `key` is held now (and would be served if no connection changed).
  [[nodiscard]] bool holds(std::string_view key) const;

 private:
  struct entry {
    std::string key;
    std::optional<std::string> value;
    net::clock::time_point stored;   // when the read was sent
    net::clock::time_point expires;  // the key's TTL counted from `stored` (max: none)
  };
  struct view_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using lru = std::list<entry>;

  static void on_push(void* self, const resp::node& n);
  void push_node(const resp::node& n);
  // False for a key the server would not invalidate (outside the broadcast prefixes).
  bool trackable(std::string_view key) const noexcept;
  // Everything is dropped if a connection was lost since the last look.
  void check_connections();
  void store(std::string_view key, std::optional<std::string> value, net::clock::time_point sent, net::clock::time_point expires);
  void erase(lru::iterator it);
  void drop_all();

  client::client& client_;
  local_cache_options opts_;
  client::push_handler next_;
  lru entries_;  // most recently used first
  std::unordered_map<std::string_view, lru::iterator, view_hash, std::equal_to<>> index_;  // views of entries_' keys
  std::size_t bytes_ = 0;
  std::uint64_t seen_losses_ = 0;  // client::connection_losses at the last look
  std::uint64_t forgets_ = 0;       // forget/set/clear calls: a read in flight across one is not kept
  local_cache_stats stats_;

  // The push being read, node by node: ["invalidate", [key, ...] or null].
  bool in_invalidation_ = false;
  std::uint32_t element_ = 0;
};

}  // namespace redring::patterns
