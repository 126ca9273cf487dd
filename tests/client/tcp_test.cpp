// SPDX-License-Identifier: MIT
// The client over TCP: IPv4, a host name resolved with getaddrinfo, IPv6 when the machine has ::1,
// a pool of connections, and a refused port.
#include "client/client.hpp"
#include "client/detached.hpp"
#include "net/error.hpp"

#include "tests/support/run_until.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace redring::client {
namespace {

using namespace std::chrono_literals;

using test::run_until;

std::string ping_url(const std::string& url, std::size_t pool = 1) {
  options o;
  std::string why;
  if (parse_url(url, o, &why)) return "bad url: " + why;
  o.pool_size = pool;
  o.connect_timeout = 1000ms;
  o.command_timeout = 2000ms;
  net::loop loop;
  client c(loop, o);
  std::optional<std::string> out;
  int answered = 0;
  auto body = [&]() -> detached {
    for (int i = 0; i < 10; ++i) answered += (co_await c.ping()) ? 1 : 0;
    const auto r = co_await c.command<std::string>("CLIENT", "INFO");
    if (!r) {
      out = r.error().what() + " / " + c.conn().last_error();
      co_return;
    }
    out = std::to_string(answered);
    if (pool > 1) {  // the PINGs went round-robin: every connection of the pool was used
      std::size_t used = 0;
      for (const auto& conn : c.pool()) used += conn->connects() == 1 ? 1 : 0;
      *out += " on " + std::to_string(used);
    }
  };
  body();
  if (!run_until(loop, [&] { return out.has_value(); })) return "no reply";
  return *out;
}

TEST(Tcp, LoopbackByAddressAndByName) {
  const int port = test::free_loopback_port();
  test::redis_server server({"--port", std::to_string(port), "--bind", "127.0.0.1 -::1"});
  EXPECT_EQ(ping_url("redis://127.0.0.1:" + std::to_string(port)), "10");
  EXPECT_EQ(ping_url("redis://localhost:" + std::to_string(port)), "10");
  EXPECT_EQ(ping_url("redis://127.0.0.1:" + std::to_string(port), 4), "10 on 4");  // a pool of 4
}

TEST(Tcp, Ipv6Loopback) {
  const int port = test::free_loopback_port();
  test::redis_server server({"--port", std::to_string(port), "--bind", "::1 127.0.0.1"});
  const std::string r = ping_url("redis://[::1]:" + std::to_string(port));
  if (r.find("cannot connect") != std::string::npos || r.find("Address family") != std::string::npos) {
    GTEST_SKIP() << "no IPv6 loopback here: " << r;
  }
  EXPECT_EQ(r, "10");
}

TEST(Tcp, RefusedPortIsAClearError) {
  const int port = test::free_loopback_port();  // nobody listens there
  options o;
  ASSERT_FALSE(parse_url("redis://127.0.0.1:" + std::to_string(port), o));
  o.command_timeout = 300ms;
  net::loop loop;
  client c(loop, o);
  std::optional<resp::error> err;
  auto body = [&]() -> detached {
    const auto r = co_await c.ping();
    if (!r) err = r.error();
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return err.has_value(); }, 5s));
  EXPECT_EQ(err->code, errc::timeout);
  EXPECT_NE(c.conn().last_error().find("Connection refused"), std::string::npos) << c.conn().last_error();
  EXPECT_NE(c.conn().last_error().find("127.0.0.1:" + std::to_string(port)), std::string::npos);
}

// Host name lookups run off the loop thread (a lookup that blocks here until the test lets it go):
// another client on the same loop is served meanwhile, then the name's client connects. A name
// that does not resolve is a clear error, looked up again on each reconnect.
std::atomic<bool> lookup_released{false};
std::atomic<int> lookups{0};

std::atomic<int> moved_port{0};  // when set, where every name points (a DNS failover)
std::atomic<bool> dns_down{false};  // every lookup fails

std::error_code held_lookup(const std::string& host, std::uint16_t port, std::vector<net::address>& out) {
  ++lookups;
  for (int i = 0; i < 5000 && !lookup_released; ++i) std::this_thread::sleep_for(1ms);
  if (host == "missing.test" || dns_down) return net::errc::resolve_failed;
  net::address a;
  const int to = moved_port != 0 ? moved_port.load() : port;
  if (!net::address::from_numeric("127.0.0.1", static_cast<std::uint16_t>(to), a)) return net::errc::resolve_failed;
  out.push_back(a);
  return {};
}

// The fake DNS's state for one test: reset at the start, and released and restored at the end
// even when an assertion returns early (a later test must not find DNS down or a lookup held).
struct fake_dns {
  explicit fake_dns(bool released) {
    lookup_released = released;
    lookups = 0;
    moved_port = 0;
    dns_down = false;
  }
  ~fake_dns() {
    lookup_released = true;  // a held lookup ends: the loop's destructor waits for it
    moved_port = 0;
    dns_down = false;
  }
};

// A redis-server on a free 127.0.0.1 port.
struct loopback_server {
  int port = test::free_loopback_port();
  test::redis_server server{{"--port", std::to_string(port), "--bind", "127.0.0.1"}};
};

TEST(Tcp, AHostNameIsLookedUpWithoutStallingTheLoop) {
  const fake_dns dns(/*released=*/false);
  loopback_server tcp;
  const int port = tcp.port;
  test::redis_server& server = tcp.server;
  net::loop loop(net::loop_options{.lookup = &held_lookup});
  options by_path;
  by_path.unix_path = server.socket_path();
  client near(loop, by_path);
  options by_name;
  by_name.host = "redis.test";
  by_name.port = static_cast<std::uint16_t>(port);
  client named(loop, by_name);
  std::optional<result<std::string>> near_pong, named_pong;
  auto body = [&]() -> detached {
    named_pong.emplace(co_await named.ping());
  };
  body();
  auto other = [&]() -> detached { near_pong.emplace(co_await near.ping()); };
  other();
  ASSERT_TRUE(run_until(loop, [&] { return near_pong.has_value(); }, 5s));
  EXPECT_TRUE(*near_pong);
  EXPECT_FALSE(named_pong.has_value());  // its lookup still holds
  // The worker thread may not have entered the lookup yet when the near PING is back.
  ASSERT_TRUE(run_until(loop, [&] { return lookups.load() == 1; }, 5s));
  EXPECT_FALSE(named_pong.has_value());
  lookup_released = true;
  ASSERT_TRUE(run_until(loop, [&] { return named_pong.has_value(); }, 5s));
  ASSERT_TRUE(*named_pong) << named_pong->error().what() << " / " << named.last_error();
  EXPECT_EQ(**named_pong, "PONG");

  options missing;
  missing.host = "missing.test";
  missing.port = static_cast<std::uint16_t>(port);
  missing.reconnect.initial_delay = 10ms;
  missing.command_timeout = 300ms;
  client unknown(loop, missing);
  std::optional<result<std::string>> lost;
  auto third = [&]() -> detached { lost.emplace(co_await unknown.ping()); };
  third();
  ASSERT_TRUE(run_until(loop, [&] { return lost.has_value(); }, 5s));
  ASSERT_FALSE(*lost);
  EXPECT_EQ(lost->error().code, errc::timeout);  // it waited for a connection that never came
  EXPECT_NE(unknown.last_error().find("cannot resolve missing.test"), std::string::npos) << unknown.last_error();
  EXPECT_GE(lookups, 3);  // looked up again on reconnect
}

// A name is looked up again when its connection drops: the endpoint of a managed primary is a name
// that moves to the new primary on failover. Here the name points at server A, then at B, and A
// drops the client: it reconnects to B.
TEST(Tcp, ANameIsLookedUpAgainWhenItsConnectionDrops) {
  const fake_dns dns(/*released=*/true);
  loopback_server tcp_a, tcp_b;
  const int port_a = tcp_a.port, port_b = tcp_b.port;
  test::redis_server &a = tcp_a.server, &b = tcp_b.server;
  test::blocking_connection admin_a(a.socket_path()), admin_b(b.socket_path());
  admin_a.call({"SET", "who", "A"});
  admin_b.call({"SET", "who", "B"});
  moved_port = port_a;
  net::loop loop(net::loop_options{.lookup = &held_lookup});
  options o;
  o.host = "primary.test";
  o.port = 6379;  // the lookup says where
  o.reconnect.initial_delay = 10ms;
  client c(loop, o);
  std::optional<result<std::optional<std::string>>> got;
  auto get_who = [&]() -> detached { got.emplace(co_await c.get("who")); };
  get_who();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }, 5s));
  ASSERT_TRUE(*got) << got->error().what();
  EXPECT_EQ(**got, "A");
  moved_port = port_b;  // the failover: the name now points at B
  admin_a.call({"CLIENT", "KILL", "TYPE", "normal"});  // A drops the client (not this admin: SKIPME)
  std::optional<std::string> now_at;
  for (int i = 0; i < 50 && now_at != "B"; ++i) {  // a GET sent before the drop is seen may fail
    got.reset();
    get_who();
    ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }, 5s));
    if (*got && **got) now_at = ***got;
  }
  EXPECT_EQ(now_at, "B");
  EXPECT_GE(lookups, 2);
}

// DNS down says nothing of the server: a lookup that fails after a drop keeps the addresses the
// last one gave, and the client reconnects to them (it once dropped them and stayed offline).
TEST(Tcp, ALookupThatFailsKeepsTheAddressesItHad) {
  const fake_dns dns(/*released=*/true);
  loopback_server tcp;
  const int port = tcp.port;
  test::blocking_connection admin(tcp.server.socket_path());
  net::loop loop(net::loop_options{.lookup = &held_lookup});
  options o;
  o.host = "primary.test";
  o.port = static_cast<std::uint16_t>(port);
  o.reconnect.initial_delay = 10ms;
  client c(loop, o);
  std::optional<result<std::string>> pong;
  auto ping = [&]() -> detached { pong.emplace(co_await c.ping()); };
  ping();
  ASSERT_TRUE(run_until(loop, [&] { return pong.has_value(); }, 5s));
  ASSERT_TRUE(*pong);
  dns_down = true;
  admin.call({"CLIENT", "KILL", "TYPE", "normal"});
  int answered = 0;
  for (int i = 0; i < 6; ++i) {  // the first may be lost with the connection
    pong.reset();
    ping();
    ASSERT_TRUE(run_until(loop, [&] { return pong.has_value(); }, 5s));
    answered += *pong ? 1 : 0;
  }
  dns_down = false;
  EXPECT_GE(answered, 5) << c.last_error();
  EXPECT_GE(lookups, 2);  // it did look up again, and the lookup failed
}

// A lookup that takes longer than connect_timeout fails the connect like a connect that timed out.
TEST(Tcp, ALookupLongerThanTheConnectTimeoutTimesOut) {
  const fake_dns dns(/*released=*/false);
  net::loop loop(net::loop_options{.lookup = &held_lookup});
  options o;
  o.host = "slow.test";
  o.port = 6379;
  o.connect_timeout = 100ms;
  o.reconnect.enabled = false;
  client c(loop, o);
  std::optional<result<std::string>> pong;
  auto ping = [&]() -> detached { pong.emplace(co_await c.ping()); };
  ping();
  ASSERT_TRUE(run_until(loop, [&] { return pong.has_value(); }, 3s));
  ASSERT_FALSE(*pong);
  EXPECT_EQ(pong->error().code, errc::connection_lost) << pong->error().what();
  EXPECT_NE(c.last_error().find("looking up slow.test timed out"), std::string::npos) << c.last_error();
  lookup_released = true;  // before the loop's destructor, which waits for the held lookup
}

}  // namespace
}  // namespace redring::client
