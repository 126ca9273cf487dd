// SPDX-License-Identifier: MIT
// Rate limiters decided on the server in one round trip: fixed window, sliding log, sliding window
// counter, token bucket and GCRA, with the figures an HTTP server needs for its RateLimit headers.
#pragma once

#include "client/client.hpp"
#include "patterns/task.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace redring::patterns {

/// How the limiter counts. See docs/patterns.md for the error bound of each.
enum class limiter_algorithm : std::uint8_t {
  fixed_window,    ///< A counter that expires `period` after its first hit (SET ... PX on the first hit, INCRBY after). Exact per window; up to 2x `limit` across a window edge.
  sliding_log,     ///< A sorted set of hit times: exact over every sliding `period`; memory O(limit) per key.
  sliding_window,  ///< Two fixed windows, the previous one weighted by its overlap: O(1) memory, approximate.
  token_bucket,    ///< `burst` tokens refilled at `limit` per `period`.
  gcra,            ///< Generic cell rate algorithm, like redis-cell's CL.THROTTLE (a hash of two numbers per key: the last write's time and the theoretical arrival time's lead on it).
};

/// What to decide when Redis gives no answer (down, timeout, script error).
enum class failure_policy : std::uint8_t {
  allow,  ///< Fail open: admit the request (an outage of Redis does not become an outage of the service).
  deny,   ///< Fail closed: refuse it (login throttles, anything abuse-sensitive).
};

/// Settings of a `rate_limiter`.
struct limiter_options {
  limiter_algorithm algorithm = limiter_algorithm::gcra;  ///< How hits are counted (each has its own key: see `key`).
  std::int64_t limit = 10;                 ///< Cost units admitted per `period`.
  std::chrono::milliseconds period{1000};  ///< The window (or: `limit` refills over this long).
  std::int64_t burst = 0;                  ///< Token bucket and GCRA: the most admitted at once (0: `limit`).
  std::string prefix = "rl:";              ///< Redis key = prefix + name + ":" + algorithm tag.
  failure_policy on_failure = failure_policy::allow;  ///< The decision when Redis fails (not for invalid arguments: denied).
  std::chrono::milliseconds timeout{200};  ///< Per decision; then `on_failure` decides (0: the client's default).
  /// Names remembered locally while they are over their limit, so repeated denials cost no round
  /// trip (0: no local cache). Oldest-deadline entries are not tracked: when full, expired entries
  /// are dropped and, if none, the new denial is not cached.
  std::size_t deny_cache_size = 0;
  /// Microseconds since the Unix epoch, from the caller's clock. Empty: the server's TIME (the
  /// default; every client then shares one clock). The fixed window never reads a clock: its window
  /// is the key's TTL on the server.
  std::function<std::int64_t()> clock;
};

/// Where a decision came from.
enum class decision_source : std::uint8_t {
  server,       ///< The script ran on the server.
  deny_cache,   ///< The local deny cache (no round trip).
  failure,      ///< Redis did not answer (`failure_policy` decided), or the arguments were invalid (denied); `failure` says why.
};

/// One decision, with what `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and
/// `Retry-After` should say.
struct decision {
  /// Whether to admit the hit: the script's answer, the deny cache's refusal, or `on_failure`'s
  /// when Redis failed. A hit the server refused consumed nothing.
  bool allowed = false;
  std::int64_t limit = 0;                  ///< The configured limit (burst for token bucket and GCRA).
  std::int64_t remaining = 0;              ///< Cost units that would still be admitted right now.
  std::chrono::milliseconds reset_after{}; ///< Until the whole limit is available again.
  /// 0 when allowed. When denied: until the same cost would be admitted; `never` if the cost
  /// exceeds what the limiter can ever admit at once.
  std::chrono::milliseconds retry_after{};
  decision_source source = decision_source::server;  ///< Where the decision came from.
  std::optional<resp::error> failure;      ///< Why Redis did not decide (source == failure), or a bad argument.

  /// `retry_after` of a cost that can never be admitted.
  static constexpr std::chrono::milliseconds never = std::chrono::milliseconds::max();
};

/// A rate limiter over one client. Each `hit` is one EVALSHA (or none, from the deny cache).
/// Loop thread only (like the coroutines that call it); the client must outlive it.
class rate_limiter {
 public:
  /// A limiter with `opts` on `c`.
  rate_limiter(client::client& c, limiter_options opts);

  /// Counts `cost` (>= 1) against `name` and decides. Never fails: when Redis does not answer, the
  /// decision is `on_failure`'s and says why. A cost < 1, or options with `limit` < 1 or a
  /// `period` under 1 ms, are denied whatever `on_failure` says, with a failure whose code is
  /// `std::errc::invalid_argument` (generic category; not `client::errc::invalid_argument`) and no
  /// round trip (the scripts would divide by them), as are a `limit`, `burst` or cost above 2^53
  /// (the scripts' numbers are doubles). `name` must outlive the co_await.
  [[nodiscard]] task<decision> hit(std::string_view name, std::int64_t cost = 1);

  /// Forgets `name`'s state on the server and in the deny cache: its full limit is available again.
  [[nodiscard]] task<resp::result<std::int64_t>> reset(std::string_view name);

  /// The Redis key that holds `name`'s state.
  [[nodiscard]] std::string key(std::string_view name) const;

  /// The options.
  [[nodiscard]] const limiter_options& options() const noexcept { return opts_; }

 private:
  struct denial {
    net::clock::time_point until, at;
    std::int64_t cost;
    decision server_decision;
  };
  [[nodiscard]] net::clock::time_point cache_now() const;
  std::optional<decision> cached_denial(const std::string& key, std::int64_t cost);
  void remember_denial(const std::string& key, const decision& d, std::int64_t cost);

  client::client& client_;
  limiter_options opts_;
  std::unordered_map<std::string, denial> denied_;
  std::string member_prefix_;  // unique per limiter: sliding-log members never collide across clients
  std::uint64_t sequence_ = 0;
};

}  // namespace redring::patterns
