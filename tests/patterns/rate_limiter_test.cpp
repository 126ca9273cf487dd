// SPDX-License-Identifier: MIT
// The rate limiters against a real redis-server: exactness under concurrency, honest headers,
// refill and retry-after with a clock the test moves, costs, failure policies, the deny cache and
// recovery from SCRIPT FLUSH.
#include "patterns/rate_limiter.hpp"
#include "patterns/script.hpp"

#include "tests/patterns/commandstats.hpp"
#include "tests/patterns/run_task.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace redring::patterns {
namespace {

using namespace std::chrono_literals;
using test::options_for;
using test::run_task;

class RateLimiter : public ::testing::TestWithParam<limiter_algorithm> {
 protected:
  limiter_options make(std::int64_t limit, std::chrono::milliseconds period) {
    limiter_options o;
    o.algorithm = GetParam();
    o.limit = limit;
    o.period = period;
    o.clock = clock.function();
    o.timeout = 10s;  // a loaded CI machine (sanitizers, parallel builds) must not turn into fail-open
    return o;
  }
  decision hit(rate_limiter& l, std::string_view name, std::int64_t cost = 1) { return run_task(loop, l.hit(name, cost)); }

  test::redis_server server;
  net::loop loop;
  client::client c1{loop, options_for(server)};
  client::client c2{loop, options_for(server)};
  test::manual_clock clock;
  test::blocking_connection admin{server.socket_path()};
};

// 200 hits from two clients (two connections), all in flight at once, against a limit of 50:
// exactly 50 are admitted, and their `remaining` figures are 49 ... 0, each once.
TEST_P(RateLimiter, ConcurrentCallersAdmitExactlyTheLimit) {
  rate_limiter a(c1, make(50, 10s)), b(c2, make(50, 10s));
  int done = 0, allowed = 0;
  std::multiset<std::int64_t> remaining;
  auto record = [&](decision d) {
    ++done;
    EXPECT_EQ(d.source, decision_source::server) << (d.failure ? d.failure->what() : "");
    if (d.allowed) {
      ++allowed;
      remaining.insert(d.remaining);
    } else {
      EXPECT_EQ(d.remaining, 0);
      EXPECT_GT(d.retry_after, 0ms);
    }
  };
  for (int i = 0; i < 100; ++i) {
    spawn(a.hit("shared"), record);
    spawn(b.hit("shared"), record);
  }
  ASSERT_TRUE(test::run_until(loop, [&] { return done == 200; }));
  EXPECT_EQ(allowed, 50);
  for (std::int64_t r = 0; r < 50; ++r) EXPECT_EQ(remaining.count(r), 1u) << r;
}

// The figures a decision reports are the server's state: remaining + used = limit, and the reset
// time is the key's TTL on the server.
TEST_P(RateLimiter, HeadersAgreeWithServerState) {
  rate_limiter l(c1, make(10, 5s));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(hit(l, "h").allowed);
  const auto d = hit(l, "h", 2);
  ASSERT_TRUE(d.allowed);
  EXPECT_EQ(d.limit, 10);
  EXPECT_EQ(d.remaining, 5);
  EXPECT_EQ(d.retry_after, 0ms);
  const auto key = l.key("h");
  const auto pttl = admin.call({"PTTL", key}).integer;
  EXPECT_GT(pttl, 0);
  switch (GetParam()) {
    case limiter_algorithm::fixed_window:
      EXPECT_EQ(admin.call({"GET", key}).text, "5");
      EXPECT_NEAR(static_cast<double>(d.reset_after.count()), static_cast<double>(pttl), 50.0);
      break;
    case limiter_algorithm::sliding_log:
      EXPECT_EQ(admin.call({"ZCARD", key}).integer, 5);
      EXPECT_EQ(d.reset_after, 5s);
      break;
    case limiter_algorithm::sliding_window:
      EXPECT_EQ(admin.call({"HGET", key, "c"}).text, "5");
      break;
    case limiter_algorithm::token_bucket:
      EXPECT_EQ(admin.call({"HGET", key, "t"}).text, "5");
      EXPECT_EQ(d.reset_after, 2500ms);  // 5 tokens at 10 per 5 s
      EXPECT_EQ(pttl <= 2500 && pttl > 2400, true) << pttl;
      break;
    case limiter_algorithm::gcra:
      EXPECT_EQ(d.reset_after, 2500ms);  // TAT is 5 intervals of 500 ms ahead
      EXPECT_EQ(pttl <= 2500 && pttl > 2400, true) << pttl;
      break;
  }
}

// Retry-After is honest: one millisecond before it the same hit is still refused, at it admitted.
// (The fixed window's time is the key's TTL on the server, tested in FixedWindowResets.)
TEST_P(RateLimiter, RetryAfterIsExact) {
  if (GetParam() == limiter_algorithm::fixed_window) GTEST_SKIP() << "no client clock";
  rate_limiter l(c1, make(4, 1s));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(hit(l, "r").allowed);  // all at one instant: exhausted
  clock.advance_ms(37);                                            // a retry-after that is not round
  const auto d = hit(l, "r");
  ASSERT_FALSE(d.allowed);
  ASSERT_GT(d.retry_after, 1ms);
  ASSERT_NE(d.retry_after, decision::never);
  clock.advance_ms(d.retry_after.count() - 1);
  EXPECT_FALSE(hit(l, "r").allowed);
  clock.advance_ms(1);
  EXPECT_TRUE(hit(l, "r").allowed);
}

// Costs: a weighted hit counts its weight, a denied one counts nothing, and a cost larger than the
// limit can never be admitted.
TEST_P(RateLimiter, Costs) {
  rate_limiter l(c1, make(12, 10s));
  EXPECT_TRUE(hit(l, "w", 5).allowed);
  EXPECT_TRUE(hit(l, "w", 5).allowed);
  const auto refused = hit(l, "w", 5);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 2);
  const auto two = hit(l, "w", 2);
  EXPECT_TRUE(two.allowed);
  EXPECT_EQ(two.remaining, 0);
  const auto huge = hit(l, "w2", 13);
  EXPECT_FALSE(huge.allowed);
  EXPECT_EQ(huge.retry_after, decision::never);
  const auto zero = hit(l, "w2", 0);
  EXPECT_FALSE(zero.allowed);
  ASSERT_TRUE(zero.failure);
  EXPECT_EQ(zero.failure->code, std::errc::invalid_argument);
}

// After the period the whole limit is back (reset_after says when).
TEST_P(RateLimiter, FullLimitAfterReset) {
  rate_limiter l(c1, make(3, 200ms));
  decision last;
  for (int i = 0; i < 3; ++i) last = hit(l, "f");
  ASSERT_TRUE(last.allowed);
  EXPECT_EQ(last.remaining, 0);
  EXPECT_FALSE(hit(l, "f").allowed);
  clock.advance_ms(last.reset_after.count());
  if (GetParam() == limiter_algorithm::fixed_window) test::pause(loop, last.reset_after + 10ms);
  const auto fresh = hit(l, "f");
  EXPECT_TRUE(fresh.allowed);
  EXPECT_EQ(fresh.remaining, 2);
}

// The server's script cache flushed between two hits: EVALSHA's NOSCRIPT falls back to EVAL.
TEST_P(RateLimiter, RecoversFromScriptFlush) {
  rate_limiter l(c1, make(5, 10s));
  ASSERT_TRUE(hit(l, "s").allowed);
  admin.call({"SCRIPT", "FLUSH"});
  const auto d = hit(l, "s");
  EXPECT_EQ(d.source, decision_source::server);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 3);
}

INSTANTIATE_TEST_SUITE_P(All, RateLimiter,
                         ::testing::Values(limiter_algorithm::fixed_window, limiter_algorithm::sliding_log,
                                           limiter_algorithm::sliding_window, limiter_algorithm::token_bucket,
                                           limiter_algorithm::gcra),
                         [](const ::testing::TestParamInfo<limiter_algorithm>& p) {
                           switch (p.param) {
                             case limiter_algorithm::fixed_window: return std::string("fixed_window");
                             case limiter_algorithm::sliding_log: return std::string("sliding_log");
                             case limiter_algorithm::sliding_window: return std::string("sliding_window");
                             case limiter_algorithm::token_bucket: return std::string("token_bucket");
                             case limiter_algorithm::gcra: break;
                           }
                           return std::string("gcra");
                         });

// The fixed window's window is the key's TTL: it resets on the server's time.
// One round trip per decision, counted by the server (EVALSHA calls), once the script is loaded.
TEST_P(RateLimiter, OneRoundTripPerDecision) {
  rate_limiter l(c1, make(3, 10s));
  (void)hit(l, "rt");  // loads the script (EVALSHA, NOSCRIPT, EVAL) on a fresh server
  for (int i = 0; i < 5; ++i) {  // admitted, then refused: each one script call
    const auto before = test::read_command_counts(admin);
    const decision d = hit(l, "rt");
    EXPECT_EQ(d.source, decision_source::server);
    EXPECT_EQ(test::read_command_counts(admin).scripts - before.scripts, 1) << "decision " << i;
  }
}

TEST(FixedWindow, ResetsOnServerTime) {
  test::redis_server server;
  net::loop loop;
  client::client c(loop, options_for(server));
  rate_limiter l(c, {.algorithm = limiter_algorithm::fixed_window, .limit = 2, .period = 150ms});
  EXPECT_TRUE(run_task(loop, l.hit("x")).allowed);
  EXPECT_TRUE(run_task(loop, l.hit("x")).allowed);
  const auto d = run_task(loop, l.hit("x"));
  EXPECT_FALSE(d.allowed);
  EXPECT_LE(d.retry_after, 150ms);
  test::pause(loop, d.retry_after + 20ms);
  EXPECT_TRUE(run_task(loop, l.hit("x")).allowed);
}

// Sliding log and sliding window under steady over-demand (3x the limit, evenly spread): the log
// never admits more than the limit in any sliding window; the counter stays within its documented
// bound (the limit per aligned window, and within 10 % over any sliding window at uniform load).
TEST(SlidingLimiters, ErrorBoundsUnderSteadyLoad) {
  test::redis_server server;
  net::loop loop;
  client::client c(loop, options_for(server));
  for (auto algorithm : {limiter_algorithm::sliding_log, limiter_algorithm::sliding_window}) {
    test::manual_clock clock;
    rate_limiter l(c, {.algorithm = algorithm, .limit = 30, .period = 1000ms, .clock = clock.function()});
    std::vector<std::int64_t> admitted;  // ms offsets
    for (std::int64_t t = 0; t < 5000; t += 11) {
      if (run_task(loop, l.hit("steady")).allowed) admitted.push_back(t);
      clock.advance_ms(11);
    }
    std::size_t worst = 0;
    for (std::size_t i = 0; i < admitted.size(); ++i) {
      const auto end = std::lower_bound(admitted.begin(), admitted.end(), admitted[i] + 1000);
      worst = std::max(worst, static_cast<std::size_t>(end - (admitted.begin() + static_cast<std::ptrdiff_t>(i))));
    }
    if (algorithm == limiter_algorithm::sliding_log) {
      EXPECT_EQ(worst, 30u);
    } else {
      EXPECT_LE(worst, 33u);
      EXPECT_GE(worst, 27u);
    }
    // Over 5 s, the admitted total is the limit's 5 windows' worth (give or take the first window).
    EXPECT_NEAR(static_cast<double>(admitted.size()), 150.0, 10.0);
  }
}

// Fail open and fail closed: with no server, the decision is the policy's, says why, and comes
// within the timeout.
TEST(RateLimiterFailure, PolicyDecidesWhenRedisIsDown) {
  net::loop loop;
  client::options o;
  o.unix_path = "/nonexistent/redring-patterns.sock";
  client::client c(loop, o);
  for (auto policy : {failure_policy::allow, failure_policy::deny}) {
    rate_limiter l(c, {.limit = 5, .on_failure = policy, .timeout = 50ms});
    const auto t0 = std::chrono::steady_clock::now();
    const auto d = run_task(loop, l.hit("down"));
    // Within the timeout, give or take a loaded machine: far from the client's reconnect backoff
    // or a wait for a server that never comes.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    EXPECT_EQ(d.allowed, policy == failure_policy::allow);
    EXPECT_EQ(d.source, decision_source::failure);
    ASSERT_TRUE(d.failure);
    EXPECT_EQ(d.remaining, policy == failure_policy::allow ? 5 : 0);
  }
}

// The deny cache answers repeated denials locally until their retry-after passes.
TEST(RateLimiterDenyCache, DeniesLocallyUntilRetryAfter) {
  test::redis_server server;
  net::loop loop;
  client::client c(loop, options_for(server));
  test::blocking_connection admin(server.socket_path());
  rate_limiter l(c, {.algorithm = limiter_algorithm::fixed_window, .limit = 1, .period = 300ms, .deny_cache_size = 16});
  EXPECT_TRUE(run_task(loop, l.hit("d")).allowed);
  const auto first = run_task(loop, l.hit("d"));
  EXPECT_FALSE(first.allowed);
  EXPECT_EQ(first.source, decision_source::server);
  // Deleting the key would admit the next hit on the server: a cached denial proves no round trip.
  admin.call({"DEL", l.key("d")});
  const auto cached = run_task(loop, l.hit("d"));
  EXPECT_FALSE(cached.allowed);
  EXPECT_EQ(cached.source, decision_source::deny_cache);
  EXPECT_LE(cached.retry_after, first.retry_after);
  test::pause(loop, first.retry_after + 10ms);
  const auto later = run_task(loop, l.hit("d"));
  EXPECT_TRUE(later.allowed);
  EXPECT_EQ(later.source, decision_source::server);
}

}  // namespace
}  // namespace redring::patterns

namespace redring::patterns {
namespace {

// A cached denial answers only the cost it was for. It once answered a LARGER cost with the
// smaller cost's retry_after: a cost that can never pass got a finite retry_after (the server says
// `never`), and a larger admissible cost was told to come back before the server would admit it.
TEST(RateLimiterDenyCache, LargerCostsGetTheServersRetryAfter) {
  test::redis_server server;
  net::loop loop;
  client::client c(loop, options_for(server));
  test::manual_clock clock;
  limiter_options o{.algorithm = limiter_algorithm::gcra, .limit = 10, .period = 10s, .timeout = 10s,
                    .clock = clock.function()};
  rate_limiter plain(c, o);
  o.deny_cache_size = 16;
  rate_limiter cached(c, o);
  ASSERT_TRUE(run_task(loop, cached.hit("n", 10)).allowed);  // the whole burst: empty now
  const auto one = run_task(loop, cached.hit("n", 1));
  ASSERT_FALSE(one.allowed);
  ASSERT_EQ(one.source, decision_source::server);
  ASSERT_EQ(one.retry_after, 1000ms);
  // The server's answers for larger costs (the limiter without a deny cache, same key).
  const auto five_server = run_task(loop, plain.hit("n", 5));
  const auto eleven_server = run_task(loop, plain.hit("n", 11));
  EXPECT_EQ(five_server.retry_after, 5000ms);
  EXPECT_EQ(eleven_server.retry_after, decision::never);
  // The deny cache's answers for the same costs must not promise more than the server.
  const auto eleven = run_task(loop, cached.hit("n", 11));
  EXPECT_FALSE(eleven.allowed);
  EXPECT_EQ(eleven.retry_after, decision::never) << "source " << static_cast<int>(eleven.source)
                                                 << ", retry_after " << eleven.retry_after.count() << " ms";
  const auto five = run_task(loop, cached.hit("n", 5));
  EXPECT_FALSE(five.allowed);
  EXPECT_GE(five.retry_after, 4900ms) << "source " << static_cast<int>(five.source)
                                      << ", retry_after " << five.retry_after.count() << " ms";
}

}  // namespace
}  // namespace redring::patterns

namespace redring::patterns {
namespace {

// A limit or period below 1 is refused before any round trip, with invalid_argument, whatever the
// failure policy: the scripts divide by them (Lua numbers are doubles: inf or NaN, then truncated
// into an integer reply), so the server's answer would be meaningless.
TEST(RateLimiterOptions, NonPositiveLimitOrPeriodIsAnInvalidArgument) {
  test::redis_server server;
  net::loop loop;
  client::client c(loop, options_for(server));
  for (const auto algorithm : {limiter_algorithm::fixed_window, limiter_algorithm::sliding_log,
                               limiter_algorithm::sliding_window, limiter_algorithm::token_bucket,
                               limiter_algorithm::gcra}) {
    for (const auto& [limit, period] : {std::pair{std::int64_t{0}, 1000ms}, std::pair{std::int64_t{-5}, 1000ms},
                                        std::pair{std::int64_t{10}, 0ms}}) {
      rate_limiter l(c, {.algorithm = algorithm, .limit = limit, .period = period, .on_failure = failure_policy::allow});
      const auto d = run_task(loop, l.hit("x"));
      EXPECT_FALSE(d.allowed) << static_cast<int>(algorithm) << " limit " << limit << " period " << period.count();
      EXPECT_EQ(d.source, decision_source::failure);
      ASSERT_TRUE(d.failure.has_value());
      EXPECT_EQ(d.failure->code, std::make_error_code(std::errc::invalid_argument));
    }
  }
  test::blocking_connection admin(server.socket_path());
  EXPECT_EQ(admin.call({"DBSIZE"}).integer, 0);  // nothing reached the server
}

}  // namespace
}  // namespace redring::patterns

namespace redring::patterns {
namespace {

// Review findings (2026-12-06), each once wrong. One server for the four.
class RateLimiterEdges : public ::testing::Test {
 protected:
  test::redis_server server;
  net::loop loop;
  client::client c{loop, options_for(server)};
  test::manual_clock clock;
};

// GCRA at rates whose emission interval is under a µs: with the caller's clock frozen, a drained
// burst admits nothing more. Its absolute TAT (~1.7e15 µs, exact to 0.25 µs) once did not move
// for intervals under 0.125 µs: 1000 of 1000 further hits passed at 10 M/s.
TEST_F(RateLimiterEdges, GcraHoldsAtRatesOfMillionsPerSecond) {
  for (const std::int64_t limit : {1'000'000LL, 4'000'000LL, 10'000'000LL, 1'000'000'000LL}) {
    rate_limiter l(c, {.algorithm = limiter_algorithm::gcra, .limit = limit, .period = 1s, .timeout = 10s,
                       .clock = clock.function()});
    const std::string name = std::to_string(limit);
    const auto drain = run_task(loop, l.hit(name, limit));
    ASSERT_TRUE(drain.allowed) << limit;
    EXPECT_EQ(drain.remaining, 0) << limit;
    int admitted = 0;
    for (int i = 0; i < 1000; ++i) admitted += run_task(loop, l.hit(name, 1)).allowed ? 1 : 0;
    EXPECT_EQ(admitted, 0) << "limit " << limit << "/s, clock frozen";
    // One interval later, exactly one unit passes (for 1 M/s: 1 µs).
    if (limit == 1'000'000) {
      clock.now_us += 1;
      EXPECT_TRUE(run_task(loop, l.hit(name, 1)).allowed);
      EXPECT_FALSE(run_task(loop, l.hit(name, 1)).allowed);
    }
  }
}

// Past 2^53 units the scripts' doubles cannot count: refused as invalid, not answered wrongly
// (an INT64_MAX "unlimited" limit once reported remaining = INT64_MIN).
TEST_F(RateLimiterEdges, LimitsBeyondTwoToTheFiftyThreeAreInvalid) {
  for (const auto a : {limiter_algorithm::fixed_window, limiter_algorithm::token_bucket, limiter_algorithm::gcra}) {
    rate_limiter huge(c, {.algorithm = a, .limit = INT64_MAX, .period = 1s, .timeout = 10s});
    const auto d = run_task(loop, huge.hit("u"));
    EXPECT_EQ(d.source, decision_source::failure);
    ASSERT_TRUE(d.failure.has_value());
    EXPECT_EQ(d.failure->code, std::make_error_code(std::errc::invalid_argument));
    rate_limiter most(c, {.algorithm = a, .limit = std::int64_t{1} << 53, .period = 1s, .timeout = 10s});
    const auto m = run_task(loop, most.hit("m"));
    EXPECT_TRUE(m.allowed);
    EXPECT_EQ(m.remaining, (std::int64_t{1} << 53) - 1);
  }
}

// The deny cache keeps time by the caller's clock when there is one: once that clock has moved by
// retry_after, the cache lets the hit through to the server, which admits it. It once aged
// denials by this process's steady clock, refusing for a full real retry_after.
TEST_F(RateLimiterEdges, TheDenyCacheFollowsTheCallersClock) {
  for (const auto a : {limiter_algorithm::sliding_log, limiter_algorithm::token_bucket, limiter_algorithm::gcra}) {
    rate_limiter l(c, {.algorithm = a, .limit = 1, .period = 60s, .timeout = 10s, .deny_cache_size = 8,
                       .clock = clock.function()});
    const std::string name = "dc" + std::to_string(static_cast<int>(a));
    ASSERT_TRUE(run_task(loop, l.hit(name)).allowed);
    const auto denied = run_task(loop, l.hit(name));
    ASSERT_FALSE(denied.allowed);
    ASSERT_EQ(denied.source, decision_source::server);
    EXPECT_EQ(run_task(loop, l.hit(name)).source, decision_source::deny_cache);
    clock.advance_ms(denied.retry_after.count());
    const auto later = run_task(loop, l.hit(name));
    EXPECT_TRUE(later.allowed) << "algorithm " << static_cast<int>(a) << ", source " << static_cast<int>(later.source);
  }
}

// A fixed window with no window open (a missing key) has nothing to reset: a refused cost larger
// than the limit reports reset_after 0, as the other algorithms do, not a whole period.
TEST_F(RateLimiterEdges, AFixedWindowNotYetOpenHasNothingToReset) {
  rate_limiter l(c, {.algorithm = limiter_algorithm::fixed_window, .limit = 5, .period = 60s, .timeout = 10s});
  const auto d = run_task(loop, l.hit("fresh", 6));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 5);
  EXPECT_EQ(d.reset_after, 0ms);
  EXPECT_EQ(d.retry_after, decision::never);
}

// A script call's timeout covers EVALSHA and its EVAL fallback together. Here EVALSHA waits out a
// 150 ms CLIENT PAUSE and gets NOSCRIPT, and the script spins 150 ms on the server: with 200 ms
// for the call, EVAL has 50 ms left and times out. It once got a fresh 200 ms and succeeded, so a
// 200 ms decision took 300 ms.
TEST_F(RateLimiterEdges, AScriptCallsTimeoutCoversItsEvalFallback) {
  const script spin(R"lua(
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= 150000
return 1
)lua");
  test::blocking_connection admin(server.socket_path());
  const script other("return 1");
  ASSERT_TRUE(run_task(loop, other.run(c, {}, {}, 2s)));  // connected before the pause
  admin.call({"CLIENT", "PAUSE", "150", "ALL"});
  const auto r = run_task(loop, spin.run(c, {}, {}, 200ms));
  ASSERT_FALSE(r) << "the script ran to its end: EVAL got a fresh timeout";
  EXPECT_EQ(r.error().code, client::errc::timeout) << r.error().what();
}

}  // namespace
}  // namespace redring::patterns
