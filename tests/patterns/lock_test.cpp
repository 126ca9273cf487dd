// SPDX-License-Identifier: MIT
// The lock against real redis-servers: mutual exclusion under contention, ownership checks on
// release and extend, fencing tokens, the watchdog, the acquire deadline, and Redlock with one of
// three servers down.
#include "patterns/lock.hpp"

#include "tests/patterns/commandstats.hpp"
#include "tests/patterns/run_task.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <memory>
#include <optional>

namespace redring::patterns {
namespace {

using namespace std::chrono_literals;
using test::options_for;
using test::run_task;

class Lock : public ::testing::Test, protected test::pattern_world {};

// N workers x M increments of a counter read and written in two commands (a lost update without
// mutual exclusion), each under the lock, on connections of their own: nothing is lost, and no
// two holders ever overlap.
TEST_F(Lock, WorkersUnderTheLockLoseNoIncrement) {
  constexpr int workers = 8, increments = 25;
  std::vector<std::unique_ptr<client::client>> clients;
  std::vector<std::unique_ptr<lock>> locks;
  for (int i = 0; i < workers; ++i) {
    clients.push_back(c.open_session());
    locks.push_back(std::make_unique<lock>(*clients.back(), lock_options{.ttl = 5s, .wait = 20s, .retry_delay = 1ms,
                                                                          .max_retry_delay = 5ms}));
  }
  int inside = 0, overlaps = 0, finished = 0, failures = 0;
  std::int64_t last_fence = 0;
  auto worker = [&](int id) -> client::detached {
    auto& l = *locks[static_cast<std::size_t>(id)];
    auto& redis = *clients[static_cast<std::size_t>(id)];
    for (int i = 0; i < increments; ++i) {
      auto held = co_await l.acquire("counter");
      if (!held) {
        ++failures;
        continue;
      }
      if (++inside > 1) ++overlaps;
      if (held->fencing_token() <= last_fence) ++failures;  // fencing tokens strictly increase
      last_fence = held->fencing_token();
      const auto v = co_await redis.get("counter");
      const std::int64_t n = v && *v ? std::stoll(**v) : 0;
      (void)co_await redis.set("counter", std::to_string(n + 1));
      --inside;
      const auto released = co_await l.release(*held);
      if (!released || !*released) ++failures;
    }
    ++finished;
  };
  for (int i = 0; i < workers; ++i) worker(i);
  ASSERT_TRUE(test::run_until(loop, [&] { return finished == workers; }, 40s));
  EXPECT_EQ(overlaps, 0);
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(admin.call({"GET", "counter"}).text, std::to_string(workers * increments));
  EXPECT_EQ(last_fence, workers * increments);
}

// A holder whose lock expired and was taken by another cannot release or extend the new lock.
TEST_F(Lock, ExpiredHolderCannotTouchTheNewHoldersLock) {
  lock l(c, {.ttl = 100ms});
  auto first = run_task(loop, l.acquire("job"));
  ASSERT_TRUE(first);
  EXPECT_FALSE(run_task(loop, l.acquire("job")));  // held
  test::pause(loop, 150ms);
  auto second = run_task(loop, l.acquire("job"));
  ASSERT_TRUE(second);
  EXPECT_GT(second->fencing_token(), first->fencing_token());
  EXPECT_NE(second->token(), first->token());
  const auto extended = run_task(loop, l.extend(*first));
  ASSERT_TRUE(extended);
  EXPECT_FALSE(*extended);
  const auto released = run_task(loop, l.release(*first));
  ASSERT_TRUE(released);
  EXPECT_FALSE(*released);
  EXPECT_EQ(admin.call({"GET", l.key("job")}).text, second->token());
  EXPECT_TRUE(*run_task(loop, l.extend(*second, 5s)));
  EXPECT_GT(admin.call({"PTTL", l.key("job")}).integer, 1000);
  EXPECT_TRUE(*run_task(loop, l.release(*second)));
  EXPECT_EQ(admin.call({"EXISTS", l.key("job")}).integer, 0);
}

// No two names share a key, nor a lock and a fencing counter. A name with a {hash tag} of its own
// was once used as is, so the lock "{job}:fence" had the key of "job"'s counter: once "job" was ever
// acquired, "{job}:fence" never could be (SET NX met the counter, which never expires); and "t" and
// "{t}" were one lock.
TEST_F(Lock, DistinctNamesNeverShareAKey) {
  lock l(c, {.ttl = 10s});
  EXPECT_NE(l.key("t"), l.key("{t}"));
  auto job = run_task(loop, l.acquire("job"));
  ASSERT_TRUE(job);
  ASSERT_TRUE(*run_task(loop, l.release(*job)));
  EXPECT_NE(l.key("{job}:fence"), l.key("job") + ":fence");
  auto other = run_task(loop, l.acquire("{job}:fence"));  // nobody holds this name
  EXPECT_TRUE(other) << (other ? "" : other.error().what());
  if (other) (void)run_task(loop, l.release(*other));
}

// acquire waits with backoff until the holder releases, or fails at its deadline.
TEST_F(Lock, AcquireRetriesUntilReleaseOrDeadline) {
  lock quick(c, {.ttl = 10s, .wait = 120ms});
  auto held = run_task(loop, quick.acquire("busy"));
  ASSERT_TRUE(held);
  const auto t0 = net::clock::now();
  const auto refused = run_task(loop, quick.acquire("busy"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, errc::not_acquired);
  EXPECT_GE(net::clock::now() - t0, 120ms);

  lock patient(c, {.ttl = 10s, .wait = 5s});
  bool got = false;
  spawn(patient.acquire("busy"), [&](resp::result<lease> r) {
    got = r.has_value();
    if (r) {
      EXPECT_GT(r->fencing_token(), held->fencing_token());
    }
  });
  test::pause(loop, 50ms);
  loop.run_once(20ms);
  EXPECT_FALSE(got);
  EXPECT_TRUE(*run_task(loop, quick.release(*held)));
  EXPECT_TRUE(test::run_until(loop, [&] { return got; }, 3s));
}

// Retry delays past the clock's range (no cap: milliseconds::max()) sleep until the deadline: two
// attempts for a held lock, where the jittered delay overflowed into a negative sleep (and the
// doubling overflowed int64) and acquire retried in a busy loop until its deadline.
TEST_F(Lock, UncappedRetryDelaysSleepUntilTheDeadline) {
  lock holder(c, {.ttl = 10s});
  auto held = run_task(loop, holder.acquire("uncapped"));
  ASSERT_TRUE(held);
  lock waiter(c, {.ttl = 10s, .wait = 150ms, .retry_delay = std::chrono::milliseconds::max(),
                  .max_retry_delay = std::chrono::milliseconds::max()});
  const auto before = test::read_command_counts(admin);
  const auto t0 = net::clock::now();
  const auto refused = run_task(loop, waiter.acquire("uncapped"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, errc::not_acquired);
  EXPECT_GE(net::clock::now() - t0, 150ms);
  EXPECT_LE(test::read_command_counts(admin).scripts - before.scripts, 2);
  EXPECT_TRUE(*run_task(loop, holder.release(*held)));
}

// The watchdog keeps a short lock alive well past its TTL, stops on release, and reports a loss.
TEST_F(Lock, WatchdogExtendsStopsAndReportsLoss) {
  lock l(c, {.ttl = 150ms});
  auto held = run_task(loop, l.acquire("long"));
  ASSERT_TRUE(held);
  int lost_calls = 0;
  l.start_watchdog(*held, [&] { ++lost_calls; });
  // Run the loop for 3 TTLs: the lock must still be ours.
  const auto until = net::clock::now() + 450ms;
  test::run_until(loop, [&] { return net::clock::now() >= until; });
  EXPECT_EQ(admin.call({"GET", l.key("long")}).text, held->token());
  EXPECT_GT(held->valid_until(), net::clock::now());
  EXPECT_TRUE(*run_task(loop, l.release(*held)));
  EXPECT_EQ(lost_calls, 0);

  // Loss: the key is deleted behind the holder's back; the watchdog's next extension finds it gone.
  auto again = run_task(loop, l.acquire("long"));
  ASSERT_TRUE(again);
  l.start_watchdog(*again, [&] { ++lost_calls; });
  admin.call({"DEL", l.key("long")});
  EXPECT_TRUE(test::run_until(loop, [&] { return lost_calls == 1; }, 2s));
  EXPECT_TRUE(again->lost());
}

// A server that stops answering: the watchdog's extension gets no reply, and the loss is reported
// when the lease's validity ends, not a command timeout (2 s here) later. It was reported at
// ttl/3 + timeout, 1.6 s after the lease had ended, while the holder went on as if it held it.
TEST_F(Lock, WatchdogReportsALossByTheLeasesEnd) {
  lock l(c, {.ttl = 600ms, .timeout = 2s});
  auto held = run_task(loop, l.acquire("stalled"));
  ASSERT_TRUE(held);
  const auto valid_until = held->valid_until();
  std::optional<net::clock::time_point> lost_at;
  l.start_watchdog(*held, [&] { lost_at = net::clock::now(); });
  ASSERT_EQ(::kill(server.pid(), SIGSTOP), 0);
  const bool lost = test::run_until(loop, [&] { return lost_at.has_value(); }, 5s);
  ::kill(server.pid(), SIGCONT);
  ASSERT_TRUE(lost);
  EXPECT_TRUE(held->lost());
  // Not before the lease ended, and soon after (the slack is the loop's and the machine's).
  EXPECT_GE(*lost_at, valid_until);
  EXPECT_LT(*lost_at - valid_until, 300ms) << "reported "
      << std::chrono::duration_cast<std::chrono::milliseconds>(*lost_at - valid_until).count() << " ms late";
}

// An uncontended acquire is one round trip (one script call on the server), and so is its release.
TEST_F(Lock, OneRoundTripPerUncontendedAcquire) {
  lock l(c, {.ttl = 5s});
  auto warm = run_task(loop, l.acquire("rt"));  // loads the scripts on a fresh server
  ASSERT_TRUE(warm);
  ASSERT_TRUE(*run_task(loop, l.release(*warm)));
  for (int i = 0; i < 5; ++i) {
    const auto before = test::read_command_counts(admin);
    auto held = run_task(loop, l.acquire("rt"));
    ASSERT_TRUE(held);
    const auto acquired = test::read_command_counts(admin);
    EXPECT_EQ(acquired.scripts - before.scripts, 1);
    EXPECT_TRUE(*run_task(loop, l.release(*held)));
    EXPECT_EQ(test::read_command_counts(admin).scripts - acquired.scripts, 1);
  }
}

// Redlock over three servers: acquired with all three, and with one down (quorum 2 of 3); two
// contenders never both hold it; with two down there is no quorum.
TEST(Redlock, QuorumWithOneServerDown) {
  auto s1 = std::make_unique<test::redis_server>();
  auto s2 = std::make_unique<test::redis_server>();
  auto s3 = std::make_unique<test::redis_server>();
  net::loop loop;
  client::options o1 = options_for(*s1), o2 = options_for(*s2), o3 = options_for(*s3);
  for (auto* o : {&o1, &o2, &o3}) o->reconnect.max_delay = 100ms;
  client::client c1(loop, o1), c2(loop, o2), c3(loop, o3);
  lock a({&c1, &c2, &c3}, {.ttl = 5s, .timeout = 200ms});
  lock b({&c1, &c2, &c3}, {.ttl = 5s, .timeout = 200ms});

  auto held = run_task(loop, a.acquire("r"));
  ASSERT_TRUE(held);
  EXPECT_FALSE(run_task(loop, b.acquire("r")));
  EXPECT_TRUE(*run_task(loop, a.release(*held)));

  s3.reset();  // one server down
  auto with_two = run_task(loop, a.acquire("r"));
  ASSERT_TRUE(with_two) << with_two.error().what();
  const auto contender = run_task(loop, b.acquire("r"));
  ASSERT_FALSE(contender);
  EXPECT_EQ(contender.error().code, errc::not_acquired);
  EXPECT_TRUE(*run_task(loop, a.extend(*with_two)));
  EXPECT_TRUE(*run_task(loop, a.release(*with_two)));

  s2.reset();  // two down: no quorum, and the one server's partial lock is undone
  const auto none = run_task(loop, a.acquire("r"));
  EXPECT_FALSE(none);
  test::blocking_connection admin(s1->socket_path());
  EXPECT_EQ(admin.call({"EXISTS", a.key("r")}).integer, 0);
}

// What docs/patterns.md promises about fencing with Redlock: the token is the largest counter of
// the servers that granted the lock, and it is NOT guaranteed to increase: the servers' counters
// diverge, and a later quorum without the server that counted furthest hands out a smaller token.
TEST(Redlock, FencingTokenIsTheQuorumsLargestAndCanGoBackwards) {
  test::redis_server s1, s2, s3;
  net::loop loop;
  client::client c1(loop, options_for(s1)), c2(loop, options_for(s2)), c3(loop, options_for(s3));
  lock l({&c1, &c2, &c3}, {.ttl = 5s, .timeout = 2s});
  test::blocking_connection a1(s1.socket_path()), a2(s2.socket_path()), a3(s3.socket_path());
  const std::string fence = l.key("job") + ":fence";
  a1.call({"SET", fence, "100"});  // server 1 has counted further (say, it granted locks the others did not)

  auto first = run_task(loop, l.acquire("job"));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->fencing_token(), 101);  // max(101, 1, 1)
  EXPECT_EQ(a1.call({"GET", fence}).text, "101");
  EXPECT_EQ(a2.call({"GET", fence}).text, "1");
  EXPECT_EQ(a3.call({"GET", fence}).text, "1");
  ASSERT_TRUE(*run_task(loop, l.release(*first)));

  // Server 1 is unavailable for this name (someone else's lock there): servers 2 and 3 form the quorum.
  a1.call({"SET", l.key("job"), "someone-else", "PX", "60000"});
  auto second = run_task(loop, l.acquire("job"));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->fencing_token(), 2);  // max(2, 2): smaller than the 101 handed out before
  EXPECT_LT(second->fencing_token(), first->fencing_token());
  EXPECT_EQ(a1.call({"GET", fence}).text, "101");  // the refusing server counted nothing
  EXPECT_TRUE(*run_task(loop, l.release(*second)));
  EXPECT_EQ(a1.call({"GET", l.key("job")}).text, "someone-else");  // release left the other lock alone
}

}  // namespace
}  // namespace redring::patterns
