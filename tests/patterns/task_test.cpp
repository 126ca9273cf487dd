// SPDX-License-Identifier: MIT
// The coroutine helpers of patterns/task.hpp that need no server: sleep_for.
#include "patterns/task.hpp"

#include "tests/support/run_until.hpp"

#include <gtest/gtest.h>

namespace redring::patterns {
namespace {

using namespace std::chrono_literals;

// Starts a task without awaiting it: it runs until its first suspension and stays owned by `t`.
template <class T>
void start(task<T>& t) {
  t.await_suspend(std::noop_coroutine()).resume();
}

// sleep_for(duration::max()) sleeps without end, as a wait without end does elsewhere
// (net::deadline_after): now + max() overflowed the clock (undefined behaviour) and wrapped into
// the past, so the endless sleep ended at once. A short sleep beside it still ends. The endless
// one's task is then destroyed mid-sleep: its timer is disarmed, so the loop (destroyed after it,
// running its last turns) touches no freed frame.
TEST(SleepFor, TheLongestSleepNeverEnds) {
  net::loop loop;
  auto sleeper = [&loop](net::clock::duration d, bool& woke) -> task<int> {
    co_await sleep_for(loop, d);
    woke = true;
    co_return 0;
  };
  bool forever_woke = false, short_woke = false;
  auto forever = sleeper(net::clock::duration::max(), forever_woke);
  auto brief = sleeper(5ms, short_woke);
  start(forever);
  start(brief);
  EXPECT_TRUE(test::run_until(loop, [&] { return short_woke; }, 2s));
  const auto until = net::clock::now() + 50ms;
  test::run_until(loop, [&] { return net::clock::now() >= until; }, 1s);
  EXPECT_FALSE(forever_woke);
}

}  // namespace
}  // namespace redring::patterns
