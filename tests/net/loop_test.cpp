// SPDX-License-Identifier: MIT
// net::loop on its own: operations and their completions, quiet submissions, timers, posting from
// other threads, a stale slot's completions being dropped, and a clear error where io_uring is
// forbidden.
#include "net/loop.hpp"

#include "tests/support/no_io_uring.hpp"

#include <gtest/gtest.h>

#include <liburing.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
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
  // A quiet operation alone: the turn waits for one more completion, but no longer than the quiet
  // wait's bound (a millisecond), not the whole max_wait.
  nop(l, l.quiet_sqe(), tq);
  auto t0 = clock::now();
  l.run_once(10s);
  EXPECT_GE(clock::now() - t0, 900us);
  EXPECT_LT(clock::now() - t0, 5s);
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

// A quiet send that does not complete inline (the peer's socket buffer is full) must not hold the
// turn's wait past a completion that should end it: here a post from another thread. It held it
// until max_wait (10 s here; a second under run()).
TEST(Loop, AStuckQuietSendDoesNotHoldTheWait) {
  loop l;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  const int flags = ::fcntl(sv[0], F_GETFL);
  ASSERT_EQ(::fcntl(sv[0], F_SETFL, flags | O_NONBLOCK), 0);
  char chunk[4096] = {};
  while (::write(sv[0], chunk, sizeof chunk) > 0) {
  }
  ASSERT_EQ(::fcntl(sv[0], F_SETFL, flags), 0);
  completions sends;
  const op_token t = l.reserve(&completions::on, &sends);
  static char small[100];
  io_uring_sqe* s = l.quiet_sqe();
  io_uring_prep_send(s, sv[0], small, sizeof small, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s, t);
  struct flag_task : task {
    std::atomic<bool> ran{false};
  } posted;
  posted.fn = [](task* p) { static_cast<flag_task*>(p)->ran = true; };
  std::thread poster([&] {
    std::this_thread::sleep_for(20ms);
    l.post(posted);
  });
  const auto t0 = clock::now();
  while (!posted.ran && clock::now() - t0 < 30s) l.run_once(10s);
  EXPECT_TRUE(posted.ran);
  EXPECT_LT(clock::now() - t0, 5s);
  poster.join();
  EXPECT_TRUE(sends.results.empty());  // still stuck
  ::shutdown(sv[0], SHUT_RDWR);
  while (sends.results.empty() && clock::now() - t0 < 30s) l.run_once(100ms);
  ::close(sv[0]);
  ::close(sv[1]);
  l.release(t);
}

// A stop() before run() is entered is kept, so run() returns at once (sync_client's destructor
// may stop its loop before the loop thread enters run(): it then waited forever). It is consumed
// when run() returns: the next run() runs until the next stop().
TEST(Loop, AStopBeforeRunIsKept) {
  loop l;
  l.stop();
  EXPECT_TRUE(l.stopping());
  std::atomic<bool> returned{false};
  std::thread rescue([&] {  // only so that a failure ends: a second stop after 5 s
    for (int i = 0; i < 500 && !returned; ++i) std::this_thread::sleep_for(10ms);
    if (!returned) l.stop();
  });
  const auto t0 = clock::now();
  l.run();
  returned = true;
  EXPECT_LT(clock::now() - t0, 4s) << "the early stop was lost";
  rescue.join();
  EXPECT_FALSE(l.stopping());
  // The next run() runs until the next stop: here from a timer on the loop itself (a stop from
  // another thread after a pause could come first on a loaded machine, and be kept).
  struct stopping_timer : timer {
    loop* l = nullptr;
    int fired = 0;
  } stopper;
  stopper.l = &l;
  stopper.fn = [](timer* p) {
    auto* t = static_cast<stopping_timer*>(p);
    ++t->fired;
    t->l->stop();
  };
  const auto t1 = clock::now();
  l.arm(stopper, t1 + 50ms);
  l.run();
  EXPECT_EQ(stopper.fired, 1);  // it ran until the stop
  EXPECT_GE(clock::now() - t1, 50ms);
}

// Embedded (notify_fd): between poll()s the loop sleeps in its host's wait, so a post from another
// thread must make notify_fd readable. It never did: post() wrote the wakeup only while run_once
// itself waited, which poll() never does.
TEST(Loop, APostWakesAnEmbeddedLoop) {
  loop_options o;
  o.notify_fd = true;
  loop l(o);
  ASSERT_GE(l.notify_fd(), 0);
  l.poll();
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, l.notify_fd(), &ev), 0);
  struct flag_task : task {
    std::atomic<bool> ran{false};
  } posted;
  posted.fn = [](task* p) { static_cast<flag_task*>(p)->ran = true; };
  std::uint64_t drained = 0;
  [[maybe_unused]] auto r = ::read(l.notify_fd(), &drained, sizeof drained);  // nonblocking
  std::thread poster([&] {
    std::this_thread::sleep_for(20ms);
    l.post(posted);
  });
  epoll_event got{};
  const auto t0 = clock::now();
  while (!posted.ran && clock::now() - t0 < 5s) {
    if (::epoll_wait(ep, &got, 1, 5000) == 1) {
      r = ::read(l.notify_fd(), &drained, sizeof drained);
      l.poll();
    }
  }
  EXPECT_TRUE(posted.ran) << "notify_fd never became readable";
  poster.join();
  ::close(ep);
}

// poll_timeout() tells an embedding host how long it may sleep: no limit with nothing pending,
// until the first timer (rounded up), zero while a turn is owed (a hook queued, a task posted).
TEST(Loop, PollTimeoutSaysHowLongAnEmbeddingHostMaySleep) {
  loop_options o;
  o.notify_fd = true;
  loop l(o);
  l.poll();
  EXPECT_EQ(l.poll_timeout(), std::chrono::milliseconds::max());
  struct firing_timer : timer {
    int fired = 0;
  } t;
  t.fn = [](timer* p) { ++static_cast<firing_timer*>(p)->fired; };
  // Far enough ahead that no stall of a loaded machine lets it fire during the polls below.
  l.arm(t, clock::now() + 60s);
  const auto until_timer = l.poll_timeout();
  EXPECT_GT(until_timer, 55s);
  EXPECT_LE(until_timer, 60s);
  struct counting_hook : turn_hook {
    int ran = 0;
  } hook;
  hook.fn = [](turn_hook* p) { ++static_cast<counting_hook*>(p)->ran; };
  l.at_end_of_turn(hook);
  EXPECT_EQ(l.poll_timeout(), 0ms);
  l.poll();
  EXPECT_EQ(hook.ran, 1);
  EXPECT_GT(l.poll_timeout(), 0ms);  // the timer again
  task posted;
  posted.fn = [](task*) {};
  l.post(posted);
  EXPECT_EQ(l.poll_timeout(), 0ms);
  l.poll();
  // The timer's deadline passes: zero, and the next poll() runs it.
  l.arm(t, clock::now() - 1ms);
  EXPECT_EQ(l.poll_timeout(), 0ms);
  l.poll();
  EXPECT_EQ(t.fired, 1);
  EXPECT_EQ(l.poll_timeout(), std::chrono::milliseconds::max());
  // A timer that never fires in practice still gives a wait an int holds (no wrap-around to a spin).
  l.arm(t, clock::time_point::max());
  EXPECT_EQ(l.poll_timeout(), std::chrono::milliseconds(INT_MAX));
  l.cancel(t);
  // An operation queued and not yet submitted: zero, until a turn submits it.
  completions done;
  const op_token token = l.reserve(&completions::on, &done);
  nop(l, l.sqe(), token);
  EXPECT_EQ(l.poll_timeout(), 0ms);
  l.poll();
  EXPECT_EQ(l.poll_timeout(), std::chrono::milliseconds::max());
  EXPECT_EQ(done.results, std::vector<int>{0});
  l.release(token);
}

// A loop built on one thread runs on another: the first thread to run a turn becomes the loop's
// (with SINGLE_ISSUER the kernel refused every submission from it, and the loop spun without ever
// completing an operation). A turn from any other thread afterwards is a clear error.
TEST(Loop, BuiltOnOneThreadRunsOnAnother) {
  loop l;
  completions done;
  const op_token t = l.reserve(&completions::on, &done);
  std::thread worker([&] {
    EXPECT_TRUE(l.in_loop_thread() == false);
    nop(l, l.sqe(), t);
    const auto t0 = clock::now();
    while (done.results.empty() && clock::now() - t0 < 5s) l.run_once(100ms);
    EXPECT_TRUE(l.in_loop_thread());
  });
  worker.join();
  ASSERT_EQ(done.results.size(), 1u);
  EXPECT_EQ(done.results[0], 0);
  EXPECT_FALSE(l.in_loop_thread());
  // Refused whatever the ring (not only SINGLE_ISSUER's, where the kernel would refuse it too).
  try {
    nop(l, l.sqe(), t);
    l.run_once(0ms);
    ADD_FAILURE() << "a turn from another thread ran";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EEXIST);
  }
  l.release(t);
}

// The first turn claims the loop whatever drives it (poll(), run_once(), not only run()) and
// whatever the ring. Only run() (and the DEFER_TASKRUN ring's enabling) set the loop's thread, so a
// COOP_TASKRUN ring (notify_fd forces it; older kernels get it) built on one thread and polled
// from another kept its builder as the loop's thread: in_loop_thread() was true there and false on
// the polling thread, so a client::submit from the builder ran inline, racing the loop's thread.
void claimed_by_the_first_turn(loop& l) {
  // The driver stays alive until the checks are done: a joined thread's pthread_t may be reused by
  // the next thread started, which would then pass for the loop's.
  std::atomic<bool> during_poll{false}, during_run_once{false}, turned{false}, checked{false};
  std::thread driver([&] {
    l.poll();
    during_poll = l.in_loop_thread();
    l.run_once(0ms);
    during_run_once = l.in_loop_thread();
    turned = true;
    while (!checked) std::this_thread::sleep_for(1ms);
  });
  const auto t0 = clock::now();
  while (!turned && clock::now() - t0 < 5s) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(turned);
  EXPECT_TRUE(during_poll) << "poll() did not make its thread the loop's";
  EXPECT_TRUE(during_run_once);
  EXPECT_FALSE(l.in_loop_thread()) << "the thread that built the loop is still taken for the loop's";
  for (int i = 0; i < 2; ++i) {  // poll(), then run_once(): each refused from this thread
    try {
      if (i == 0) {
        l.poll();
      } else {
        l.run_once(0ms);
      }
      ADD_FAILURE() << "a turn from a thread other than the loop's ran";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EEXIST) << e.what();
    }
  }
  EXPECT_FALSE(l.in_loop_thread());
  // Nor does a third thread take it over.
  std::atomic<bool> third_ran{false}, third_in_loop_thread{true};
  std::thread third([&] {
    third_in_loop_thread = l.in_loop_thread();
    try {
      l.poll();
      third_ran = true;
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EEXIST);
    }
  });
  third.join();
  EXPECT_FALSE(third_in_loop_thread);
  EXPECT_FALSE(third_ran) << "a third thread ran a turn";
  checked = true;
  driver.join();
}

TEST(Loop, TheFirstTurnClaimsACoopTaskrunRing) {
  loop_options o;
  o.notify_fd = true;  // no DEFER_TASKRUN: it cannot signal an eventfd
  loop l(o);
  ASSERT_FALSE(l.features().defer_taskrun);
  EXPECT_TRUE(l.in_loop_thread());  // before the first turn: the thread that built it
  claimed_by_the_first_turn(l);
}

TEST(Loop, TheFirstTurnClaimsTheDefaultRing) {
  loop l;
  EXPECT_TRUE(l.in_loop_thread());
  claimed_by_the_first_turn(l);
}

// run() is a turn like the others: a loop claimed by poll() on one thread refuses run() on
// another, whatever the ring (run() took the loop over on a COOP_TASKRUN ring).
TEST(Loop, RunFromAnotherThreadThanTheFirstTurnsIsRefused) {
  for (const bool notify : {true, false}) {
    loop_options o;
    o.notify_fd = notify;
    loop l(o);
    std::thread driver([&] { l.poll(); });
    driver.join();
    std::atomic<bool> returned{false};
    std::thread rescue([&] {  // only so that a failure ends: a run() that wrongly runs is stopped
      for (int i = 0; i < 20 && !returned; ++i) std::this_thread::sleep_for(10ms);
      if (!returned) l.stop();
    });
    try {
      l.run();
      ADD_FAILURE() << "run() from another thread ran (notify_fd " << notify << ")";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EEXIST);
    }
    returned = true;
    rescue.join();
    EXPECT_FALSE(l.in_loop_thread()) << "notify_fd " << notify;
  }
}

// make_room keeps a linked pair together when the submission queue is nearly full: a submit
// between a read and its linked timeout cut the link (the timeout failed with -EINVAL, the read
// waited without end).
TEST(Loop, MakeRoomKeepsALinkedPairTogether) {
  loop_options o;
  o.entries = 4;
  loop l(o);
  completions noops, reads;
  const op_token tn = l.reserve(&completions::on, &noops);
  const op_token tr = l.reserve(&completions::on, &reads);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  while (io_uring_sq_space_left(&l.ring()) > 1) nop(l, l.sqe(), tn);  // one entry left
  l.make_room(2);
  io_uring_sqe* s = l.sqe();
  static char buf[8];
  io_uring_prep_read(s, p[0], buf, sizeof buf, 0);
  io_uring_sqe_set_data64(s, tr);
  s->flags |= IOSQE_IO_LINK;
  static __kernel_timespec ts{0, 50'000'000};
  io_uring_prep_link_timeout(l.sqe(), &ts, 0);
  const auto t0 = clock::now();
  while (reads.results.empty() && clock::now() - t0 < 5s) l.run_once(100ms);
  ASSERT_EQ(reads.results.size(), 1u) << "the read's timeout never fired";
  EXPECT_EQ(reads.results[0], -ECANCELED);
  ::close(p[0]);
  ::close(p[1]);
  l.release(tn);
  l.release(tr);
}

// A turn run from a completion dispatched the outer turn's completions again and moved the queue's
// head past its tail: every later completion came millions of times. It is refused, loudly.
TEST(LoopDeathTest, ATurnInsideATurnIsRefused) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        loop l;
        struct nested {
          loop* l;
          static void on(void* self, int, std::uint32_t) { static_cast<nested*>(self)->l->poll(); }
        } n{&l};
        nop(l, l.sqe(), l.reserve(&nested::on, &n));
        l.run_once(1s);
      },
      "inside a turn");
}

TEST(Loop, OptionsOutOfRangeAreRefused) {
  const auto refused = [](auto change) {
    loop_options o;
    change(o);
    try {
      loop l(o);
    } catch (const std::invalid_argument&) {
      return true;
    }
    return false;
  };
  EXPECT_TRUE(refused([](loop_options& o) { o.entries = 1; }));  // no room for a connect and its timeout
  EXPECT_TRUE(refused([](loop_options& o) { o.entries = 65536; }));
  EXPECT_TRUE(refused([](loop_options& o) { o.buffer_size = 0; }));  // 0-byte receives read as EOF
  EXPECT_TRUE(refused([](loop_options& o) { o.buffer_size = std::size_t{1} << 32; }));
  EXPECT_TRUE(refused([](loop_options& o) { o.buffer_count = 0; }));
  EXPECT_TRUE(refused([](loop_options& o) { o.buffer_count = 40000; }));
  EXPECT_TRUE(refused([](loop_options& o) { o.lookup = nullptr; }));
  EXPECT_FALSE(refused([](loop_options& o) { o.entries = 2; }));
  EXPECT_FALSE(refused([](loop_options& o) { o.entries = 0; }));  // the default, 512
  EXPECT_FALSE(refused([](loop_options& o) { o.buffer_size = 1; }));
}

TEST(Loop, MakeRoomForMoreThanTheRingHoldsIsRefused) {
  loop_options o;
  o.entries = 2;
  loop l(o);
  EXPECT_THROW(l.make_room(3), std::invalid_argument);
  EXPECT_NO_THROW(l.make_room(2));
}

// Narrow representations (short seconds, int milliseconds) were compared in their own type, which
// truncated the room left before the clock's end: 5 short seconds came out as "never".
TEST(Loop, DeadlinesOfNarrowDurationsAreExact) {
  const clock::time_point now = clock::now();
  EXPECT_EQ(deadline_after(now, std::chrono::duration<short>(5)), now + std::chrono::seconds(5));
  EXPECT_EQ(deadline_after(now, std::chrono::duration<int, std::milli>(100)), now + std::chrono::milliseconds(100));
  EXPECT_EQ(deadline_after(now, std::chrono::duration<unsigned char>(7)), now + std::chrono::seconds(7));
  EXPECT_EQ(deadline_after(now, std::chrono::duration<std::uint64_t, std::milli>(UINT64_MAX)), clock::time_point::max());
  EXPECT_EQ(deadline_after(now, std::chrono::hours::max()), clock::time_point::max());
  EXPECT_EQ(deadline_after(now, std::chrono::duration<short>(-1)), now);
  EXPECT_EQ(deadline_after(now, std::chrono::milliseconds(0)), now);
}

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
