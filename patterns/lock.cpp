// SPDX-License-Identifier: MIT
#include "patterns/lock.hpp"

#include "client/hash_slot.hpp"
#include "patterns/script.hpp"
#include "patterns/watchdog.hpp"

#include <algorithm>
#include <array>
#include <random>

namespace redring::patterns {
namespace {

// KEYS[1] the lock, KEYS[2] its fencing counter (same {hash tag}, same slot); ARGV[1] the token,
// ARGV[2] the TTL in ms, ARGV[3] "1" to count fencing tokens. Returns {fencing token (1 without
// fencing), 0} when acquired, {0, holder's PTTL} when not. Atomic: SET NX and INCR happen
// together, so every acquisition gets a larger counter than every one before it, and a failed SET
// never burns a number.
constexpr std::string_view acquire_lua = R"lua(
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if ARGV[3] == '1' then return {redis.call('INCR', KEYS[2]), 0} end
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[1])}
)lua";

// KEYS[1] the lock; ARGV[1] the token. Returns 1 if deleted, 0 if the lock is not this token's.
// Atomic: a GET then DEL from the client could delete a lock that expired and was taken in between.
constexpr std::string_view release_lua = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

// KEYS[1] the lock; ARGV[1] the token, ARGV[2] the new TTL in ms. Returns 1 if extended, 0 if the
// lock is not this token's. Atomic for the same reason as release.
constexpr std::string_view extend_lua = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
)lua";

const script& acquire_script() {
  static const script s(acquire_lua);
  return s;
}
const script& release_script() {
  static const script s(release_lua);
  return s;
}
const script& extend_script() {
  static const script s(extend_lua);
  return s;
}

// Backoff jitter: not a secret, so a cheap generator, seeded once per thread from the OS.
net::clock::duration jittered(std::chrono::milliseconds delay, double jitter) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const double fraction = 1.0 - std::clamp(jitter, 0.0, 1.0) * std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  // In double nanoseconds, saturated: a delay of milliseconds::max() is past clock::duration's range.
  const double ns = static_cast<double>(delay.count()) * 1e6 * fraction;
  constexpr auto longest = static_cast<double>(net::clock::duration::max().count());
  return ns >= longest ? net::clock::duration::max() : net::clock::duration(static_cast<net::clock::rep>(ns));
}

}  // namespace

struct lease::state {
  std::string name, key, fence_key, token;
  std::int64_t fence = 0;
  std::chrono::milliseconds ttl{};
  net::clock::time_point valid_until{};
  bool lost = false;
  bool watching = false;
  net::loop* loop = nullptr;
  detail::watchdog_pause dog;  // stopped: released or lease destroyed, the watchdog ends

  void stop() noexcept { dog.stop(); }
};

lease::~lease() {
  if (state_) state_->stop();
}
lease& lease::operator=(lease&& other) noexcept {
  if (this != &other) {
    if (state_) state_->stop();
    state_ = std::move(other.state_);
  }
  return *this;
}
const std::string& lease::name() const noexcept { return state_->name; }
const std::string& lease::token() const noexcept { return state_->token; }
std::int64_t lease::fencing_token() const noexcept { return state_->fence; }
net::clock::time_point lease::valid_until() const noexcept { return state_->valid_until; }
bool lease::lost() const noexcept { return state_->lost; }

lock::lock(client::client& c, lock_options opts) : servers_{&c}, opts_(std::move(opts)) {}
lock::lock(std::vector<client::client*> servers, lock_options opts)
    : servers_(std::move(servers)), opts_(std::move(opts)) {}

std::string lock::key(std::string_view name) const {
  std::string k;
  k.reserve(opts_.prefix.size() + name.size() + 5);
  // A name with a {hash tag} of its own keeps it, so that the lock shares a slot with the data it
  // guards (the cache's stampede locks do), and ends in ":lock"; any other name becomes the tag
  // and ends in "}". The fencing counter adds ":fence". No two names, and no lock and counter,
  // share a key: the endings differ ("t" is lock:{t}, "{t}" lock:{t}:lock; the lock "{job}:fence"
  // is lock:{job}:fence:lock, not the counter lock:{job}:fence of "job").
  if (client::hash_tag(name).size() != name.size()) return k.append(opts_.prefix).append(name).append(":lock");
  k.append(opts_.prefix).append("{").append(name).append("}");
  return k;
}

task<resp::result<lease>> lock::acquire(std::string_view name) {
  auto s = std::make_shared<lease::state>();
  s->name = name;
  s->key = key(name);
  s->fence_key = s->key;
  s->fence_key.append(":fence");
  s->token = random_hex(16);
  s->ttl = opts_.ttl;
  s->loop = &servers_.front()->loop();
  s->dog.attach(*s->loop);
  const auto deadline = net::deadline_after(net::clock::now(), opts_.wait);  // milliseconds::max(): no end
  auto delay = opts_.retry_delay;
  for (;;) {
    auto fence = co_await try_once(s);
    if (fence) {
      s->fence = *fence;
      co_return lease(std::move(s));
    }
    const auto now = net::clock::now();
    if (now >= deadline) co_return fence.error();
    co_await sleep_for(*s->loop, std::min<net::clock::duration>(jittered(delay, opts_.jitter), deadline - now));
    delay = delay >= opts_.max_retry_delay / 2 ? opts_.max_retry_delay : delay * 2;  // doubled, without overflow
  }
}

// One attempt on every server at once (Redlock step 2, in parallel rather than in turn): acquired
// if a quorum said yes and time is left after subtracting the elapsed time and the drift.
task<resp::result<std::int64_t>> lock::try_once(const std::shared_ptr<lease::state>& s) {
  const auto start = net::clock::now();
  const std::array<std::string, 2> keys = {s->key, s->fence_key};
  const std::array<std::string, 3> args = {s->token, std::to_string(s->ttl.count()), opts_.fencing ? "1" : "0"};
  std::vector<task<resp::result<resp::value>>> attempts;
  attempts.reserve(servers_.size());
  for (auto* c : servers_) attempts.push_back(acquire_script().run(*c, keys, args, opts_.timeout));
  const auto replies = co_await when_all(std::move(attempts));

  std::size_t acquired = 0, held = 0;
  std::int64_t fence = 0;
  std::optional<resp::error> failure;
  for (const auto& r : replies) {
    auto pair = r ? resp::convert<std::pair<std::int64_t, std::int64_t>>(*r)
                  : resp::result<std::pair<std::int64_t, std::int64_t>>(r.error());
    if (!pair) {
      if (!failure) failure = pair.error();
    } else if (pair->first > 0) {
      ++acquired;
      fence = std::max(fence, pair->first);
    } else {
      ++held;
    }
  }
  const auto drift = std::chrono::duration_cast<net::clock::duration>(s->ttl * opts_.drift_factor) +
                     std::chrono::milliseconds(2);
  const auto valid_until = start + s->ttl - drift;
  if (acquired >= quorum() && net::clock::now() < valid_until) {
    s->valid_until = valid_until;
    co_return fence;
  }
  // No quorum, or it took too long: undo what was taken, everywhere (a reply may have been lost).
  if (acquired > 0 || failure) (void)co_await on_all(s, false, {});
  if (held == 0 && acquired == 0 && failure) co_return *failure;  // nobody could be asked
  co_return resp::error{make_error_code(errc::not_acquired), s->name};
}

// Release (extend = false) or extend on every server at once: true when a quorum confirmed.
task<resp::result<bool>> lock::on_all(const std::shared_ptr<lease::state>& s, bool extend,
                                      std::chrono::milliseconds ttl, std::chrono::milliseconds timeout) {
  const auto start = net::clock::now();
  const std::array<std::string, 1> keys = {s->key};
  const std::array<std::string, 2> args = {s->token, std::to_string(ttl.count())};
  const auto& what = extend ? extend_script() : release_script();
  std::vector<task<resp::result<resp::value>>> calls;
  calls.reserve(servers_.size());
  const auto per_command = timeout.count() > 0 ? timeout : opts_.timeout;
  for (auto* c : servers_) calls.push_back(what.run(*c, keys, std::span(args).first(extend ? 2 : 1), per_command));
  const auto replies = co_await when_all(std::move(calls));
  std::size_t confirmed = 0, refused = 0;
  std::optional<resp::error> failure;
  for (const auto& r : replies) {
    auto n = r ? resp::convert<std::int64_t>(*r) : resp::result<std::int64_t>(r.error());
    if (!n) {
      if (!failure) failure = n.error();
    } else if (*n == 1) {
      ++confirmed;
    } else {
      ++refused;
    }
  }
  if (confirmed >= quorum()) {
    if (extend) {
      const auto drift = std::chrono::duration_cast<net::clock::duration>(ttl * opts_.drift_factor) +
                         std::chrono::milliseconds(2);
      s->valid_until = start + ttl - drift;
    }
    co_return true;
  }
  // Unreachable servers may still hold it: only a quorum of refusals is a certain "not ours".
  if (failure && servers_.size() - refused >= quorum()) co_return *failure;
  co_return false;
}

task<resp::result<bool>> lock::release(lease& l) {
  auto s = l.state_;
  s->stop();
  co_return co_await on_all(s, false, {});
}

task<resp::result<bool>> lock::extend(lease& l, std::chrono::milliseconds ttl) {
  auto s = l.state_;
  if (ttl.count() <= 0) ttl = s->ttl;
  co_return co_await on_all(s, true, ttl);
}

void lock::start_watchdog(lease& l, std::function<void()> on_lost) {
  if (l.state_->watching || l.state_->dog.stopped()) return;
  l.state_->watching = true;
  watchdog(l.state_, std::move(on_lost));
}

// Extends every ttl/3; a failed round (no reply) is retried at the next tick while the lease is
// still valid, so one slow reply does not lose the lock, and a lease past its validity is lost.
// The loss is reported by `valid_until` at the latest: the pause ends there, and an extension's
// commands time out there (with ttl/3 pauses and full command timeouts, the holder once heard of
// the loss up to ttl/3 + timeout after its lease had ended, writing meanwhile as if it held it).
client::detached lock::watchdog(std::shared_ptr<lease::state> s, std::function<void()> on_lost) {
  const auto interval = std::max(s->ttl / 3, std::chrono::milliseconds(1));
  const auto left = [&s] {
    return std::chrono::ceil<std::chrono::milliseconds>(s->valid_until - net::clock::now());
  };
  // Not a step before the caller holds the handle: on_lost never runs inside the call that started
  // the watchdog (a review proved it did for a lease already run out).
  co_await s->dog.pause(std::chrono::milliseconds(0));
  while (!s->dog.stopped()) {
    if (left().count() <= 0) {
      s->lost = true;
      break;
    }
    co_await s->dog.pause(std::min(interval, left()));
    if (s->dog.stopped()) break;
    const auto budget = left();
    if (budget.count() <= 0) {
      s->lost = true;
      break;
    }
    const auto per_command = opts_.timeout.count() > 0 ? std::min(opts_.timeout, budget) : budget;
    const auto extended = co_await on_all(s, true, s->ttl, per_command);
    if (s->dog.stopped()) break;
    if (extended && *extended) continue;
    if (!extended && extended.error().code == client::errc::shutting_down) {
      // The client closed: no renewal will come, the lease runs out (a review proved it ended unreported).
      s->lost = true;
      break;
    }
    if (extended || net::clock::now() >= s->valid_until) {
      s->lost = true;
      break;
    }
  }
  s->watching = false;
  if (s->lost && on_lost) on_lost();
}

}  // namespace redring::patterns
