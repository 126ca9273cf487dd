// SPDX-License-Identifier: MIT
// Client-side caching: replies of GET and of other read-only one-key commands kept in the process,
// exact by Redis's invalidation messages (CLIENT TRACKING, RESP3).
// https://redis.io/docs/latest/develop/reference/client-side-caching/
#pragma once

#include "client/client.hpp"
#include "patterns/task.hpp"

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace redring::patterns {

/// Settings of a `local_cache`.
struct local_cache_options {
  std::size_t max_entries = 10000;           ///< Keys; past it, the least recently used key is dropped (with every reply kept under it).
  /// Past it, as above. Counted: keys, GET values, and for each other reply the words after its key,
  /// its payload bytes, `local_cache::reply_overhead` for its own storage and
  /// `local_cache::element_overhead` per element of an aggregate (so that many small replies, or an
  /// empty list, are not free).
  std::size_t max_bytes = 64 * 1024 * 1024;
  /// Replies other than GET's kept under one key (its HGET of different fields, ZRANGE of different
  /// windows ...); past it, the key's oldest goes. Bounds the scan a read of that key makes.
  std::size_t max_replies_per_key = 64;
  /// Oldest a value may be when served (0: as long as no invalidation came). A bound on staleness
  /// should an invalidation be lost in a way the cache cannot see (none is known with RESP3).
  std::chrono::milliseconds max_age{0};
};

/// What a `local_cache` did so far.
struct local_cache_stats {
  std::uint64_t hits = 0;           ///< Answered in the process (no round trip).
  std::uint64_t misses = 0;         ///< Sent to the server.
  std::uint64_t invalidations = 0;  ///< Keys dropped (with their replies) by the server's invalidation messages.
  std::uint64_t flushes = 0;        ///< Times everything was dropped: a flush on the server, or a connection lost.
  std::uint64_t evictions = 0;      ///< Keys dropped for `max_entries` or `max_bytes` (or a key's oldest reply, when only it is left).
  std::size_t entries = 0;          ///< Keys held now.
  std::size_t replies = 0;          ///< Replies held now under those keys (GET's counts one).
  std::size_t bytes = 0;            ///< What they count against `max_bytes`.
};

/// GET, and any read-only command about one key (HGETALL, SMEMBERS, ZRANGE, ...: `cacheable`), with
/// the replies kept in the process: a read made once is answered without a round trip until the
/// server says its key changed. The client must have been made with `options::tracking.enabled`
/// (`?tracking=yes`), so that each of its connections sends `CLIENT TRACKING ON` and the server
/// pushes an `invalidate` message for each key a connection read once it changes, expires or is
/// evicted (null: the database was flushed). These arrive on that connection, in order with its
/// replies, so a value is never kept past the invalidation of the write that followed its read.
///
/// What the cache cannot see it does not serve: every value is dropped when any of the client's
/// connections is lost (its tracked keys go with it; `client::connection_losses`), and a read is
/// not kept if a connection was lost while it was in flight. Absent keys are kept too (as nullopt, or
/// as the command's reply for a missing key). Replies are kept per key: an invalidation drops every
/// reply read from that key.
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
  /// The values of `keys` in order, as `get` reads each: held ones from the process, the others
  /// sent at once (their reads leave together, in one write per connection; a cluster client sends
  /// each to its key's node) and kept. A key holding another type reads as nullopt, as MGET answers
  /// it (and is not kept). Any other error (a lost connection) fails the call. `keys` must live until
  /// the task completes.
  [[nodiscard]] task<resp::result<std::vector<std::optional<std::string>>>> mget(std::span<const std::string_view> keys);
  /// True if `read` keeps the reply of `args`: a read-only command whose reply depends only on the
  /// value of its one key, `args[1]`, so that the key's invalidation covers every change to it:
  /// GET GETRANGE STRLEN GETBIT BITCOUNT BITPOS BITFIELD_RO, TYPE, EXISTS (one key); HGET HMGET
  /// HGETALL HKEYS HVALS HLEN HEXISTS HSTRLEN; LINDEX LLEN LRANGE LPOS; SCARD SISMEMBER SMISMEMBER
  /// SMEMBERS; ZCARD ZCOUNT ZLEXCOUNT ZMSCORE ZSCORE ZRANK ZREVRANK ZRANGE ZRANGEBYLEX ZRANGEBYSCORE
  /// ZREVRANGE ZREVRANGEBYLEX ZREVRANGEBYSCORE; XLEN XRANGE XREVRANGE; GEODIST GEOHASH GEOPOS
  /// GEOSEARCH. The name in any case. Not: commands with other keys (SORT_RO, LCS, SINTER), random
  /// replies (SRANDMEMBER, HRANDFIELD), replies that change with time alone (TTL, OBJECT), or any write.
  [[nodiscard]] static bool cacheable(std::span<const std::string_view> args) noexcept;
  /// The names `cacheable` accepts, upper case, sorted.
  [[nodiscard]] static std::span<const std::string_view> cacheable_commands() noexcept;
  /// What a reply other than GET's counts against `max_bytes` beyond its words and payload: about its
  /// own storage (the kept record, its reply's root, vector slack). A review measured ~280 bytes of
  /// heap per one-integer reply, when such a reply counted 2 bytes.
  static constexpr std::size_t reply_overhead = 256;
  /// What each element of an aggregate reply counts beyond its payload: its `resp::value`.
  static constexpr std::size_t element_overhead = sizeof(resp::value);
  /// The reply of `args`, a command `cacheable` accepts (e.g. HGETALL user:1): from the
  /// process if held (as `get` decides), else sent with PTTL of its key (one round trip) and kept for
  /// the next call with the same words. A command `cacheable` refuses: `client::errc::invalid_argument`,
  /// nothing sent. An error reply (WRONGTYPE): that error, nothing kept. The words must live until the
  /// task completes. Convert the reply with `resp::convert`.
  [[nodiscard]] task<resp::result<resp::value>> read(std::span<const std::string_view> args);
  /// `read` of the words `name key words...` (`co_await cache.read("HGET", key, field)`); they must
  /// live until the task completes.
  template <std::convertible_to<std::string_view>... Words>
  [[nodiscard]] task<resp::result<resp::value>> read(std::string_view name, std::string_view key, const Words&... words) {
    const std::array<std::string_view, 2 + sizeof...(Words)> args{name, key, std::string_view(words)...};
    co_return co_await read(std::span<const std::string_view>(args));
  }
  /// SET `key` `value`, the local copies dropped before and after (see read-your-writes above).
  [[nodiscard]] task<resp::result<bool>> set(std::string_view key, std::string_view value);
  /// Drops every reply kept under `key` (nothing is sent).
  void forget(std::string_view key);
  /// Drops every local copy (nothing is sent).
  void clear();

  /// Counters, and the size now.
  [[nodiscard]] local_cache_stats stats() const noexcept;
  /// True if a reply is held under `key` now (and would be served if no connection changed).
  [[nodiscard]] bool holds(std::string_view key) const;

 private:
  // A reply other than GET's, kept under its key.
  struct kept_reply {
    // The command: its name's length (one byte), its name in upper case, then each word after the
    // key as a 4-byte length and its bytes.
    std::string words;
    resp::value reply;
    net::clock::time_point stored;   // when the read was sent
    net::clock::time_point expires;  // the key's TTL counted from `stored` (max: none)
    std::size_t bytes;               // what it counts against max_bytes
  };
  // What is kept under one key. GET's reply has fields of its own: most caches hold little else, and
  // an entry of a GET alone stays as small as a string cache's (no reply tree, no vector storage).
  struct entry {
    std::string key;
    std::optional<std::string> value;  // GET's reply, if has_value
    net::clock::time_point stored;     // GET's: when it was sent
    net::clock::time_point expires;    // GET's: the key's TTL counted from `stored`
    bool has_value = false;
    std::vector<kept_reply> replies;   // other commands'
    [[nodiscard]] bool empty() const noexcept { return !has_value && replies.empty(); }
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
  // GET's value of `key` if held and servable now: moves the key to the front of the LRU and counts
  // a hit. A stale one is dropped. Null: a miss.
  const std::optional<std::string>* held_value(std::string_view key);
  // True if a read sent at `stored` may be served now (before the key's deadline, within max_age).
  bool servable(net::clock::time_point stored, net::clock::time_point expires) const noexcept;
  // The reply of `args` (a command other than GET) if one is held under its key and may be served
  // now: moves the key to the front of the LRU and counts a hit. A stale one is dropped. Null: a miss.
  const resp::value* lookup(std::span<const std::string_view> args);
  // Sends `args` with PTTL of its key and keeps the reply if nothing that invalidations would not
  // cover happened meanwhile.
  task<resp::result<resp::value>> fetch(std::span<const std::string_view> args);
  void store(std::span<const std::string_view> args, resp::value reply, net::clock::time_point sent,
             net::clock::time_point expires);
  // The entry of `key` at the front of the LRU, made if need be, with room for `bytes` more (less
  // recently used keys evicted, then this key's own replies, oldest first, if nothing else is left);
  // end() if `bytes` cannot fit at all.
  lru::iterator place(std::string_view key, std::size_t bytes);
  // Drop GET's reply, or one other reply, of the entry at `it`; the entry goes when it holds nothing.
  void drop_value(lru::iterator it);
  void drop_reply(lru::iterator it, std::vector<kept_reply>::iterator r);
  void erase(lru::iterator it);
  void drop_all();

  client::client& client_;
  local_cache_options opts_;
  client::push_handler next_;
  lru entries_;  // most recently used first
  std::size_t replies_ = 0;
  std::unordered_map<std::string_view, lru::iterator, view_hash, std::equal_to<>> index_;  // views of entries_' keys
  std::size_t bytes_ = 0;
  std::uint64_t seen_losses_ = 0;  // client::connection_losses at the last look
  std::uint64_t forgets_ = 0;       // forget/set/clear calls: a read in flight across one is not kept
  local_cache_stats stats_;

  // Keys with reads in flight, and the invalidations of each that arrived meanwhile: a read is kept
  // only if none did. A write that runs between the read and its PTTL (the pipeline reached the
  // server in two reads) sends its push between their replies, when nothing is stored yet to drop;
  // a review proved the old value then kept for good.
  struct in_flight {
    std::uint32_t reads = 0;
    std::uint64_t invalidations = 0;
  };
  std::unordered_map<std::string, in_flight, view_hash, std::equal_to<>> in_flight_;
  std::uint64_t flush_pushes_ = 0;  // invalidations of everything (FLUSHALL, FLUSHDB) seen
  // Registers a read of `key` about to be sent; returns what `landed` compares.
  std::pair<std::uint64_t, std::uint64_t> taking_off(std::string_view key);
  // Unregisters it; true if `key` (or everything) was invalidated since `taking_off` returned `mark`.
  bool landed(std::string_view key, std::pair<std::uint64_t, std::uint64_t> mark);

  // The push being read, node by node: ["invalidate", [key, ...] or null].
  bool in_invalidation_ = false;
  std::uint32_t element_ = 0;
};

}  // namespace redring::patterns
