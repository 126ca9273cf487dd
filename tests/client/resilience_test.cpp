// SPDX-License-Identifier: MIT
// Health checks, idempotent retries, logging (without secrets) and embedding the loop in epoll.
#include "client/client.hpp"
#include "client/detached.hpp"

#include "tests/support/run_until.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/patterns/commandstats.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <vector>

namespace redring::client {
namespace {

using namespace std::chrono_literals;

using test::run_until;

std::string temp_socket_path(std::string& dir) {
  char tmpl[] = "/tmp/redring-sock-XXXXXX";
  dir = ::mkdtemp(tmpl);
  return dir + "/redis.sock";
}

// A client of the Unix socket `path` that reconnects after 20 ms, backing off up to `max_delay`.
options reconnecting_quickly(const std::string& path, std::chrono::milliseconds max_delay) {
  options o;
  o.unix_path = path;
  o.reconnect.initial_delay = 20ms;
  o.reconnect.max_delay = max_delay;
  return o;
}

TEST(Resilience, HealthCheckDropsAStalledConnectionAndRecovers) {
  test::redis_server server;
  net::loop loop;
  options o;
  o.unix_path = server.socket_path();
  o.health_check_interval = 150ms;
  o.connect_timeout = 300ms;
  o.reconnect.initial_delay = 20ms;
  o.reconnect.max_delay = 100ms;
  client c(loop, o);
  bool ready = false;
  auto warm = [&]() -> detached {
    (void)co_await c.ping();
    ready = true;
  };
  warm();
  ASSERT_TRUE(run_until(loop, [&] { return ready; }));
  ::kill(server.pid(), SIGSTOP);
  // Idle for one interval: PING; no reply within the next: the connection goes.
  ASSERT_TRUE(run_until(loop, [&] { return c.conn().state() != connection_state::ready; }, 3s));
  EXPECT_NE(c.conn().last_error().find("health check"), std::string::npos) << c.conn().last_error();
  // Reconnecting to a stopped server: the handshake times out instead of hanging.
  ASSERT_TRUE(run_until(loop, [&] { return c.conn().last_error().find("handshake timed out") != std::string::npos; }, 5s))
      << c.conn().last_error();
  ::kill(server.pid(), SIGCONT);
  std::optional<std::string> pong;
  auto again = [&]() -> detached {
    const auto r = co_await c.ping();
    pong = r ? *r : r.error().what();
  };
  again();
  ASSERT_TRUE(run_until(loop, [&] { return pong.has_value(); }, 10s));
  EXPECT_EQ(*pong, "PONG");
}

TEST(Resilience, IdempotentCommandsAreRetriedOnceOthersFail) {
  std::string dir;
  const std::string path = temp_socket_path(dir);
  auto server = std::make_unique<test::redis_server>(std::vector<std::string>{}, path);
  net::loop loop;
  client c(loop, reconnecting_quickly(path, 100ms));
  bool ready = false;
  auto warm = [&]() -> detached {
    (void)co_await c.set("k", "v");
    ready = true;
  };
  warm();
  ASSERT_TRUE(run_until(loop, [&] { return ready; }));
  ::kill(server->pid(), SIGSTOP);
  std::optional<result<std::optional<std::string>>> retried, plain;
  auto send_both = [&]() -> detached { retried.emplace(co_await c.get("k").idempotent()); };
  auto send_plain = [&]() -> detached { plain.emplace(co_await c.get("k")); };
  send_both();
  send_plain();
  loop.run_once(0ms);
  loop.run_once(50ms);
  ::kill(server->pid(), SIGKILL);
  ASSERT_TRUE(run_until(loop, [&] { return plain.has_value(); }, 5s));
  ASSERT_FALSE(*plain);
  EXPECT_EQ(plain->error().code, errc::connection_lost);
  EXPECT_FALSE(retried.has_value());  // waits for the next connection
  server.reset();
  test::redis_server restarted({}, path);
  {
    test::blocking_connection admin(path);
    (void)admin.call({"SET", "k", "after-restart"});
  }
  ASSERT_TRUE(run_until(loop, [&] { return retried.has_value(); }, 10s));
  ASSERT_TRUE(*retried) << retried->error().what();
  EXPECT_EQ(**retried, std::optional<std::string>("after-restart"));
  // Once: the restarted server ran the retried GET one time (the plain one was not sent again).
  test::blocking_connection admin(path);
  EXPECT_EQ(test::command_calls(admin.call({"INFO", "commandstats"}).text, "get"), 1);
  std::filesystem::remove_all(dir);
}

TEST(Resilience, LogsConnectionEventsNeverPasswords) {
  test::redis_server server;
  {
    test::blocking_connection admin(server.socket_path());
    (void)admin.call({"ACL", "SETUSER", "app", "on", ">hunter2", "~*", "+@all"});
  }
  std::ostringstream out;
  auto logger = std::make_shared<spdlog::logger>("redring", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  logger->set_level(spdlog::level::trace);
  net::loop loop;
  options o;
  o.unix_path = server.socket_path();
  o.user = "app";
  o.password = "hunter2";
  o.logger = logger;
  o.reconnect.initial_delay = 10ms;
  client c(loop, o);
  bool done = false;
  auto body = [&]() -> detached {
    (void)co_await c.ping();
    done = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return done; }));
  {
    test::blocking_connection admin(server.socket_path());  // the server drops our connection
    EXPECT_EQ(admin.call({"CLIENT", "KILL", "USER", "app"}).integer, 1);
  }
  ASSERT_TRUE(run_until(loop, [&] { return c.conn().connects() >= 2 && c.conn().state() == connection_state::ready; }, 5s));
  logger->flush();
  const std::string text = out.str();
  EXPECT_NE(text.find("connected to unix:"), std::string::npos) << text;
  EXPECT_NE(text.find("connection lost"), std::string::npos) << text;
  EXPECT_NE(text.find("reconnecting in"), std::string::npos) << text;
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
}

// Embedded in a host's epoll loop that sleeps for as long as poll_timeout() allows (capped at 3 s
// to fail rather than hang): commands issued from completions (each PING after the last one's
// reply) are sent by the next poll(), and a command timeout (a timer) fires while the server is
// paused. Without poll_timeout the host could only guess: each chained command waited out the
// host's own timeout, and a timer fired late by as much.
TEST(Resilience, EmbedsInAnEpollLoop) {
  test::redis_server server;
  net::loop_options lo;
  lo.notify_fd = true;
  net::loop loop(lo);
  ASSERT_GE(loop.notify_fd(), 0);
  options o;
  o.unix_path = server.socket_path();
  client c(loop, o);
  test::blocking_connection admin(server.socket_path());
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, loop.notify_fd(), &ev), 0);
  std::vector<std::string> pongs;
  std::optional<result<std::string>> paused;
  bool finished = false;
  auto body = [&]() -> detached {
    for (int i = 0; i < 5; ++i) {
      const auto r = co_await c.ping();
      pongs.push_back(r ? *r : r.error().what());
    }
    admin.call({"CLIENT", "PAUSE", "300", "ALL"});  // the next PING gets no reply for 300 ms
    paused.emplace(co_await c.ping().with_timeout(50ms));
    finished = true;
  };
  body();
  constexpr auto cap = 3s;
  int wakeups = 0, capped = 0;
  for (int turns = 0; !finished && turns < 1000; ++turns) {
    loop.poll();
    const auto wait = std::min<std::chrono::milliseconds>(loop.poll_timeout(), cap);
    epoll_event got{};
    const int n = ::epoll_wait(ep, &got, 1, static_cast<int>(wait.count()));
    if (n == 1) {
      std::uint64_t count;
      [[maybe_unused]] auto r = ::read(loop.notify_fd(), &count, sizeof count);
      ++wakeups;
    } else if (n == 0 && wait == cap) {
      ++capped;  // slept the cap: poll_timeout() had not said when to come back
      break;
    }
  }
  ::close(ep);
  ASSERT_TRUE(finished);
  EXPECT_EQ(pongs, std::vector<std::string>(5, "PONG"));
  ASSERT_TRUE(paused.has_value());
  ASSERT_FALSE(*paused);
  EXPECT_EQ(paused->error().code, errc::timeout);
  EXPECT_EQ(capped, 0);
  EXPECT_GT(wakeups, 0);
}

// A command with a large argument (>= 16 KiB, which the writer may reference instead of copying)
// is queued while the server is down and times out; its coroutine ends and frees the argument. When
// the server comes back, the queued bytes are sent: they must be the caller's, not freed memory (a
// command with a deadline has its arguments copied; they were once referenced, and the server
// stored whatever reused the freed block).
TEST(Resilience, TimedOutQueuedCommandDoesNotSendFreedArgumentBytes) {
  std::string dir;
  const std::string path = temp_socket_path(dir);
  net::loop loop;
  client c(loop, reconnecting_quickly(path, 50ms));
  std::optional<result<std::optional<std::string>>> got;
  auto body = [&]() -> detached {
    std::string value(64 * 1024, 'v');  // freed when this coroutine ends
    got.emplace(co_await c.set("k", value).with_timeout(100ms));
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }, 5s));
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().code, errc::timeout);
  // The heap reuses the freed block: the bytes the client still points at now read 'Z'.
  std::vector<std::string> fillers;
  for (int i = 0; i < 16; ++i) fillers.emplace_back(64 * 1024, 'Z');
  test::redis_server server({}, path);
  std::optional<result<std::string>> pong;
  auto after = [&]() -> detached { pong.emplace(co_await c.ping()); };
  after();
  ASSERT_TRUE(run_until(loop, [&] { return pong.has_value(); }, 10s));
  ASSERT_TRUE(*pong) << pong->error().what();
  test::blocking_connection admin(path);
  const resp::value v = admin.call({"GET", "k"});
  // A command that timed out while queued offline is dropped unsent (see CommandsThatTimedOutOffline-
  // NeverRun); had it gone out, its bytes would be the caller's (Multiplexer.ARequestWithADeadline-
  // OwnsNothingOfItsCaller checks that they are copied).
  EXPECT_TRUE(v.is_null()) << "a command that timed out offline was sent: " << v.text.substr(0, 16) << "...";
  std::filesystem::remove_all(dir);
}

// Blocking commands' connections have no health check: a BLPOP that waits longer than the interval
// keeps its connection silent, and a PING queued behind it could not be answered in time (its
// timeout once dropped the connection, failing the BLPOP with connection_lost).
TEST(Resilience, HealthCheckDoesNotKillAWaitingBlockingCommand) {
  test::redis_server server;
  net::loop loop;
  options o;
  o.unix_path = server.socket_path();
  o.health_check_interval = 150ms;
  client c(loop, o);
  std::optional<result<resp::value>> popped;
  auto body = [&]() -> detached { popped.emplace(co_await c.command("BLPOP", "empty", "1")); };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return popped.has_value(); }, 5s));
  ASSERT_TRUE(*popped) << popped->error().what();  // observed: connection lost (health check)
  EXPECT_TRUE((*popped)->is_null());  // BLPOP's own timeout: a null reply after 1 s
}

}  // namespace
}  // namespace redring::client
