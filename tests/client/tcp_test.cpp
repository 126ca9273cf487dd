// SPDX-License-Identifier: MIT
// The client over TCP: IPv4, a host name resolved with getaddrinfo, IPv6 when the machine has ::1,
// a pool of connections, and a refused port.
#include "client/client.hpp"
#include "client/detached.hpp"

#include "tests/support/run_until.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <chrono>

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
    out = r ? std::to_string(answered) : r.error().what() + " / " + c.conn().last_error();
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
  EXPECT_EQ(ping_url("redis://127.0.0.1:" + std::to_string(port), 4), "10");  // a pool of 4
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

}  // namespace
}  // namespace redring::client
