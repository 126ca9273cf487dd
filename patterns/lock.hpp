// SPDX-License-Identifier: MIT
// A distributed lock: SET NX PX with a random token, release and extend only by the token's owner,
// acquire with backoff until a deadline, a watchdog, fencing tokens, and Redlock over N servers.
// Read the limits in docs/patterns.md before trusting it with correctness (use the fencing token).
#pragma once

#include "client/client.hpp"
#include "patterns/error.hpp"
#include "patterns/task.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace redring::patterns {

/// Settings of a `lock`.
struct lock_options {
  std::chrono::milliseconds ttl{10000};        ///< How long a lock lives unless extended.
  std::chrono::milliseconds wait{0};           ///< `acquire` retries for this long (0: one attempt).
  std::chrono::milliseconds retry_delay{10};   ///< First pause between attempts; doubles each time...
  std::chrono::milliseconds max_retry_delay{200};  ///< ...up to this.
  double jitter = 0.5;                         ///< Fraction of each pause drawn at random (spreads contenders).
  std::chrono::milliseconds timeout{1000};     ///< Per command (0: the client's default).
  /// Redlock: the clock drift allowed for, as a fraction of `ttl` (plus 2 ms), subtracted from the
  /// validity of every acquisition, also with one server.
  double drift_factor = 0.01;
  /// Keys: prefix + "{" + name + "}" and ... + ":fence"; a name with a {hash tag} of its own keeps
  /// it, with ":lock" after it (prefix + name + ":lock", and ... + ":fence"), so the lock lives in
  /// the slot of the data that shares the tag.
  std::string prefix = "lock:";
  /// Keep a fencing counter per name (a key that never expires). Off: no counter key, and
  /// `fencing_token()` is 1 (for short-lived names, such as the cache's stampede locks).
  bool fencing = true;
};

/// A held lock. Move-only; destroying it stops its watchdog but does not release the lock (it then
/// expires after its TTL): call `lock::release`.
class lease {
 public:
  lease(lease&&) noexcept = default;
  /// Stops the watchdog of the lease assigned over (without releasing its lock).
  lease& operator=(lease&& other) noexcept;
  ~lease();

  /// The lock's name.
  [[nodiscard]] const std::string& name() const noexcept;
  /// The random token (32 hex digits from the CSPRNG) that proves ownership.
  [[nodiscard]] const std::string& token() const noexcept;
  /// The fencing token: strictly greater than that of every earlier acquisition of this name on
  /// this server. Pass it to the storage you protect and let it refuse smaller ones. With Redlock
  /// (several servers) it is the largest of the quorum's counters and NOT guaranteed to increase:
  /// see docs/patterns.md.
  [[nodiscard]] std::int64_t fencing_token() const noexcept;
  /// Until when (local steady clock) the lock is certainly still held, counting drift: past it, stop
  /// writing. Moves forward with every successful extension (by hand or by the watchdog).
  [[nodiscard]] net::clock::time_point valid_until() const noexcept;
  /// True once the watchdog found the lock gone (expired and taken, or deleted), could not extend
  /// it before `valid_until`, or stopped because the client closed.
  [[nodiscard]] bool lost() const noexcept;

 private:
  friend class lock;
  struct state;
  explicit lease(std::shared_ptr<state> s) : state_(std::move(s)) {}
  std::shared_ptr<state> state_;
};

/// A lock service over one server, or Redlock over several independent ones (quorum N/2 + 1).
/// Loop thread only; the clients (all on one loop) must outlive it, and it must outlive its leases'
/// watchdogs and every operation in flight.
class lock {
 public:
  /// A lock on one server.
  lock(client::client& c, lock_options opts = {});
  /// Redlock over `servers` (independent masters, not replicas of one another).
  lock(std::vector<client::client*> servers, lock_options opts = {});

  /// One attempt, or attempts with backoff and jitter until `opts.wait` passes: the lease, or
  /// `errc::not_acquired` (held by someone else / no quorum), or the last error when no server
  /// could be asked. `name` must outlive the co_await. One round trip per attempt per server.
  [[nodiscard]] task<resp::result<lease>> acquire(std::string_view name);

  /// Deletes the lock if it is still this lease's (token compared on the server): true if it was,
  /// false if it had expired or belongs to someone else. Stops the watchdog.
  [[nodiscard]] task<resp::result<bool>> release(lease& l);

  /// Resets the lock's TTL to `ttl` (0: the options' ttl) if it is still this lease's: true if it
  /// was, false if it had been lost. Moves `valid_until` forward on success.
  [[nodiscard]] task<resp::result<bool>> extend(lease& l, std::chrono::milliseconds ttl = {});

  /// Starts extending `l` every ttl/3 while it is held. Stops on `release`, when the lease is
  /// destroyed, or when the lock is lost; then `on_lost` (if any) is called once on the loop thread.
  void start_watchdog(lease& l, std::function<void()> on_lost = {});

  /// The Redis key of `name`'s lock.
  [[nodiscard]] std::string key(std::string_view name) const;

 private:
  task<resp::result<std::int64_t>> try_once(const std::shared_ptr<lease::state>& s);
  // `timeout`: per command, instead of `opts_.timeout` when positive (the watchdog's, which must
  // know by the lease's validity whether it still holds it).
  task<resp::result<bool>> on_all(const std::shared_ptr<lease::state>& s, bool extend, std::chrono::milliseconds ttl,
                                  std::chrono::milliseconds timeout = {});
  client::detached watchdog(std::shared_ptr<lease::state> s, std::function<void()> on_lost);
  [[nodiscard]] std::size_t quorum() const noexcept { return servers_.size() / 2 + 1; }

  std::vector<client::client*> servers_;
  lock_options opts_;
};

}  // namespace redring::patterns
