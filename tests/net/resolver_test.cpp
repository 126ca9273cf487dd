// SPDX-License-Identifier: MIT
// The resolver: lookups on its own thread, results on the loop's, cancellation, a loop destroyed
// while a lookup runs. The lookup function is the test's: it blocks until the test lets it go.
#include "net/resolver.hpp"

#include "net/error.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace redring::net {
namespace {

using namespace std::chrono_literals;

// A lookup that blocks until `released` (5 s at most; not for names starting with "fast"), then
// answers 127.0.0.1 or, for "missing", resolve_failed.
std::atomic<bool> released{false};
std::atomic<int> lookups{0};
std::atomic<int> finished{0};  // lookups that returned (their results are on their way to the loop)
std::thread::id lookup_thread;

std::error_code blocking_lookup(const std::string& host, std::uint16_t port, std::vector<address>& out) {
  lookup_thread = std::this_thread::get_id();
  ++lookups;
  if (!host.starts_with("fast")) {
    for (int i = 0; i < 5000 && !released; ++i) std::this_thread::sleep_for(1ms);
  }
  struct count_finished {
    ~count_finished() { ++finished; }
  } on_return;
  if (host == "missing") return errc::resolve_failed;
  address a;
  if (!address::from_numeric("127.0.0.1", port, a)) return errc::resolve_failed;
  out.push_back(a);
  return {};
}

struct outcome {
  int calls = 0;
  std::error_code ec;
  std::vector<address> addresses;
  std::thread::id thread;
  static void on(void* self, std::error_code ec, std::vector<address>& found) {
    auto* o = static_cast<outcome*>(self);
    ++o->calls;
    o->ec = ec;
    o->addresses = std::move(found);
    o->thread = std::this_thread::get_id();
  }
};

template <class Done>
bool turn_until(loop& l, Done done) {
  const auto end = clock::now() + 5s;
  while (!done() && clock::now() < end) l.run_once(10ms);
  return done();
}

struct Resolver : ::testing::Test {
  void SetUp() override {
    released = false;
    lookups = 0;
  }
  loop l{loop_options{.lookup = &blocking_lookup}};
};

// The loop keeps turning while a lookup blocks (a timer fires, and it is what releases the lookup),
// and the result comes back on the loop's thread.
TEST_F(Resolver, LooksUpOffTheLoopThreadAndAnswersOnIt) {
  outcome o;
  (void)l.name_resolver().lookup("redis.test", 6380, &outcome::on, &o);
  struct release_timer : timer {
    bool fired = false;
  } t;
  t.fn = [](timer* p) {
    static_cast<release_timer*>(p)->fired = true;
    released = true;
  };
  l.arm(t, clock::now() + 20ms);
  ASSERT_TRUE(turn_until(l, [&] { return o.calls == 1; }));
  EXPECT_TRUE(t.fired);
  EXPECT_NE(lookup_thread, std::this_thread::get_id());
  EXPECT_EQ(o.thread, std::this_thread::get_id());
  EXPECT_FALSE(o.ec);
  ASSERT_EQ(o.addresses.size(), 1u);
  EXPECT_EQ(o.addresses[0].to_string(), "127.0.0.1:6380");
}

TEST_F(Resolver, AFailedLookupSaysSo) {
  released = true;
  outcome o;
  (void)l.name_resolver().lookup("missing", 6379, &outcome::on, &o);
  ASSERT_TRUE(turn_until(l, [&] { return o.calls == 1; }));
  EXPECT_EQ(o.ec, errc::resolve_failed);
  EXPECT_TRUE(o.addresses.empty());
}

// A cancelled lookup calls nothing: those cancelled while they run finish and are dropped, one
// cancelled while it waits for a worker never runs. Later lookups still answer.
TEST_F(Resolver, ACancelledLookupCallsNothing) {
  resolver& r = l.name_resolver();
  const int finished_before = finished;
  std::vector<outcome> running(resolver::max_workers);
  std::vector<resolver::query*> busy;
  for (outcome& o : running) busy.push_back(r.lookup("busy.test", 1, &outcome::on, &o));
  while (lookups < static_cast<int>(resolver::max_workers)) std::this_thread::sleep_for(1ms);  // every worker busy
  outcome waiting, later;
  resolver::query* queued = r.lookup("queued.test", 2, &outcome::on, &waiting);
  for (resolver::query* q : busy) r.cancel(q);
  r.cancel(queued);
  (void)r.lookup("c.test", 3, &outcome::on, &later);
  released = true;
  ASSERT_TRUE(turn_until(l, [&] { return later.calls == 1; }));
  // Every cancelled lookup that ran has finished and handed its result to the loop, which has had
  // turns to drop it, before the checks: "c" may answer first.
  ASSERT_TRUE(turn_until(l, [&] { return finished - finished_before == static_cast<int>(resolver::max_workers) + 1; }));
  for (int i = 0; i < 5; ++i) l.run_once(std::chrono::milliseconds(10));
  for (const outcome& o : running) EXPECT_EQ(o.calls, 0);
  EXPECT_EQ(waiting.calls, 0);
  EXPECT_EQ(lookups, static_cast<int>(resolver::max_workers) + 1);  // the busy ones and "c"; "queued" never ran
  EXPECT_EQ(later.addresses.at(0).to_string(), "127.0.0.1:3");
}

// A name whose lookup hangs (DNS that does not answer) holds one worker, not the others: a lookup
// started after it answers while it still hangs.
TEST_F(Resolver, ASlowLookupDoesNotHoldTheOthers) {
  outcome slow, fast;
  (void)l.name_resolver().lookup("slow.test", 1, &outcome::on, &slow);
  while (lookups == 0) std::this_thread::sleep_for(1ms);
  (void)l.name_resolver().lookup("fast.test", 2, &outcome::on, &fast);
  ASSERT_TRUE(turn_until(l, [&] { return fast.calls == 1; }));
  EXPECT_EQ(slow.calls, 0);
  EXPECT_EQ(fast.addresses.at(0).to_string(), "127.0.0.1:2");
  released = true;
  ASSERT_TRUE(turn_until(l, [&] { return slow.calls == 1; }));
}

// A loop destroyed while a lookup runs waits for it and calls nothing (ASan: nothing leaks).
TEST(ResolverLifetime, ALoopDestroyedDuringALookupCallsNothing) {
  released = false;
  lookups = 0;
  outcome o;
  std::thread releaser;
  {
    loop l{loop_options{.lookup = &blocking_lookup}};
    // Every worker busy, and one more waiting for a worker (freed by the destructor, never run).
    for (std::size_t i = 0; i <= resolver::max_workers; ++i) (void)l.name_resolver().lookup("redis.test", 6379, &outcome::on, &o);
    while (lookups < static_cast<int>(resolver::max_workers)) std::this_thread::sleep_for(1ms);
    releaser = std::thread([] {
      std::this_thread::sleep_for(200ms);  // long after the loop's last turns: it is in the join
      released = true;
    });
  }
  releaser.join();
  EXPECT_EQ(o.calls, 0);
  EXPECT_EQ(lookups, static_cast<int>(resolver::max_workers));
}

}  // namespace
}  // namespace redring::net
