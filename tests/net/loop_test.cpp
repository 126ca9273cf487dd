// SPDX-License-Identifier: MIT
// net::loop on its own: operations and their completions, quiet submissions, timers, posting from
// other threads, a stale slot's completions being dropped, and a clear error where io_uring is
// forbidden.
#include "net/loop.hpp"

#include "tests/support/no_io_uring.hpp"

#include <gtest/gtest.h>

#include <liburing.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace redring::net {
namespace {

using namespace std::chrono_literals;

struct completions {
  std::vector<int> results;
  static void on(void* self, int res, std::uint32_t) { static_cast<completions*>(self)->results.push_back(res); }
};

void nop(loop& l, io_uring_sqe* s, op_token token) {
  (void)l;
  io_uring_prep_nop(s);
  io_uring_sqe_set_data64(s, token);
}

TEST(Loop, CompletionsReachTheirSlot) {
  loop l;
  completions a, b;
  const op_token ta = l.reserve(&completions::on, &a);
  const op_token tb = l.reserve(&completions::on, &b);
  nop(l, l.sqe(), ta);
  nop(l, l.sqe(), tb);
  nop(l, l.sqe(), tb);
  for (int i = 0; i < 10 && a.results.size() + b.results.size() < 3; ++i) l.run_once(100ms);
  EXPECT_EQ(a.results, (std::vector<int>{0}));
  EXPECT_EQ(b.results, (std::vector<int>{0, 0}));
  // A released slot's late completions are dropped, and a reused index does not receive them.
  nop(l, l.sqe(), ta);
  l.release(ta);
  completions c;
  const op_token tc = l.reserve(&completions::on, &c);
  l.run_once(0ms);
  l.run_once(0ms);
  EXPECT_EQ(a.results.size(), 1u);
  EXPECT_TRUE(c.results.empty());
  l.release(tb);
  l.release(tc);
}

TEST(Loop, QuietCompletionDoesNotEndTheWaitAlone) {
  loop l;
  completions quiet, loud;
  const op_token tq = l.reserve(&completions::on, &quiet);
  const op_token tl = l.reserve(&completions::on, &loud);
  // A quiet operation alone: the turn waits for one more completion, here until its timeout.
  nop(l, l.quiet_sqe(), tq);
  auto t0 = clock::now();
  l.run_once(150ms);
  EXPECT_GE(clock::now() - t0, 140ms);
  EXPECT_EQ(quiet.results.size(), 1u);  // it was still dispatched with the turn
  // The same with an ordinary operation beside it: both complete, no waiting for the timeout.
  nop(l, l.quiet_sqe(), tq);
  nop(l, l.sqe(), tl);
  t0 = clock::now();
  l.run_once(10s);
  EXPECT_LT(clock::now() - t0, 5s);
  EXPECT_EQ(quiet.results.size(), 2u);
  EXPECT_EQ(loud.results.size(), 1u);
  // The count is per turn: an ordinary operation next turn ends the wait at once.
  nop(l, l.sqe(), tl);
  t0 = clock::now();
  l.run_once(10s);
  EXPECT_LT(clock::now() - t0, 5s);
  EXPECT_EQ(loud.results.size(), 2u);
  l.release(tq);
  l.release(tl);
}

struct counting_timer : timer {
  std::vector<int>* order = nullptr;
  int id = 0;
};

TEST(Loop, TimersFireInDeadlineOrderAndCancelledOnesDoNot) {
  loop l;
  std::vector<int> order;
  std::vector<counting_timer> timers(5);
  const auto base = clock::now();
  const int delays_ms[] = {40, 10, 30, 20, 50};
  for (int i = 0; i < 5; ++i) {
    timers[i].order = &order;
    timers[i].id = i;
    timers[i].fn = [](timer* t) {
      auto* c = static_cast<counting_timer*>(t);
      c->order->push_back(c->id);
    };
    l.arm(timers[i], base + std::chrono::milliseconds(delays_ms[i]));
  }
  l.cancel(timers[2]);
  l.arm(timers[4], base + 5ms);  // re-arming moves it
  EXPECT_FALSE(timers[2].armed());
  while (order.size() < 4 && clock::now() - base < 5s) l.run_once(100ms);
  EXPECT_EQ(order, (std::vector<int>{4, 1, 3, 0}));
  EXPECT_GE(clock::now() - base, 40ms);
  for (auto& t : timers) EXPECT_FALSE(t.armed());
}

struct flag_task : task {
  std::atomic<int>* ran = nullptr;
};

TEST(Loop, PostFromAnotherThreadWakesASleepingLoop) {
  loop l;
  std::atomic<int> ran{0};
  std::vector<flag_task> tasks(100);
  for (auto& t : tasks) {
    t.ran = &ran;
    t.fn = [](task* p) { static_cast<flag_task*>(p)->ran->fetch_add(1); };
  }
  std::thread poster([&] {
    std::this_thread::sleep_for(50ms);
    for (auto& t : tasks) l.post(t);
  });
  const auto t0 = clock::now();
  while (ran.load() < 100 && clock::now() - t0 < 10s) l.run_once(10s);
  poster.join();
  EXPECT_EQ(ran.load(), 100);
  EXPECT_LT(clock::now() - t0, 9s);  // woken by the post, not by the 10 s wait running out
}

TEST(Loop, PollNeverWaits) {
  loop l;
  const auto t0 = clock::now();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(l.poll(), 0u);
  EXPECT_LT(clock::now() - t0, 5s);
}

// Where io_uring is forbidden (a container runtime's default seccomp profile, or the
// kernel.io_uring_disabled sysctl), the constructor throws a system_error carrying io_uring_setup's
// errno, with a message that names the likely cause.
TEST(Loop, ForbiddenIoUringIsAClearSystemError) {
  const auto r = test::run_without_io_uring([] {
    try {
      loop l;
      std::printf("constructed");
      return 1;
    } catch (const std::system_error& e) {
      std::printf("%d %s", e.code().value(), e.what());
      return 0;
    }
  });
  if (r.exit_code == test::no_filter) GTEST_SKIP() << "no seccomp filter can be installed here";
  ASSERT_EQ(r.signal, 0) << r.output;
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind(std::to_string(EPERM) + " io_uring_setup failed: io_uring is disabled", 0), 0u)
      << r.output;
}

}  // namespace
}  // namespace redring::net
