// SPDX-License-Identifier: MIT
// Test support for the patterns: run a task on a loop until it ends, client options for a private
// server, a pause that keeps the loop's time current, and a clock the test moves.
#pragma once

#include "client/client.hpp"
#include "client/options.hpp"
#include "patterns/task.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/run_until.hpp"

#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <thread>
#include <utility>

namespace redring::test {

/// Starts `t` and runs turns of `loop` until it ends; its value. A task that does not end within
/// `limit` is a bug (a hang): the test binary stops with a message rather than waiting for ctest.
template <class T>
T run_task(net::loop& loop, patterns::task<T> t, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  std::optional<T> out;
  patterns::spawn(std::move(t), [&out](T v) { out.emplace(std::move(v)); });
  if (!run_until(loop, [&out] { return out.has_value(); }, limit)) {
    std::fputs("run_task: the task did not finish in time\n", stderr);
    std::terminate();
  }
  return std::move(*out);
}

/// Client options for the private server `s`.
inline client::options options_for(const redis_server& s) {
  client::options o;
  o.unix_path = s.socket_path();
  return o;
}

/// Blocks the thread for `d` (to let server-side TTLs pass), then runs one turn of `loop` so that its
/// notion of "now", from which command timeouts count, is current again.
inline void pause(net::loop& loop, std::chrono::milliseconds d) {
  std::this_thread::sleep_for(d);
  loop.poll();
}

/// A clock for the patterns' `clock` options that moves only when the test says: microseconds
/// since the epoch, starting at a fixed, realistic instant (2026-01-01).
struct manual_clock {
  std::int64_t now_us = 1'767'225'600'000'000;
  void advance_ms(std::int64_t ms) { now_us += ms * 1000; }
  auto function() {
    return [this] { return now_us; };
  }
};

/// What most patterns tests start from: a private server, a loop, a client of the server on it and
/// a blocking admin connection. A fixture derives from it (`class Lock : public ::testing::Test,
/// protected test::pattern_world`).
struct pattern_world {
  redis_server server;
  net::loop loop;
  client::client c{loop, options_for(server)};
  blocking_connection admin{server.socket_path()};
};

}  // namespace redring::test
