// SPDX-License-Identifier: MIT
// Redis Sentinel: the client asks the sentinels where the master is before every connect, checks it
// with ROLE, and follows a failover. By URL or by struct.
// Usage: sentinel redis+sentinel://host1:26379,host2:26379/mymaster[?sentinel_role=replica]
//        (default: REDIS_URL, else the struct below: a sentinel on 127.0.0.1:26379 watching "mymaster").
// A plain redis:// or unix:// URL works too (then without Sentinel).
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/url.hpp"

#include <cstdio>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  // By struct, the same as redis+sentinel://127.0.0.1:26379/mymaster. The sentinels' own password
  // (their requirepass) is sentinel.password; opts.password stays the servers'.
  opts.sentinel.master_name = "mymaster";
  opts.sentinel.sentinels = {{"127.0.0.1", 26379}};
  opts.sentinel.role = client::sentinel_role::master;  // or replica, for reads
  opts.command_timeout = std::chrono::milliseconds(2000);
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  net::loop loop;
  client::client redis(loop, opts);
  int status = 1;
  auto work = [&]() -> client::detached {
    const auto port = co_await redis.command<std::vector<std::string>>("CONFIG", "GET", "port");
    if (!port) {
      // No sentinel answering, none knowing the name, or no server of the right role: the
      // connection's last_error() names each sentinel and what it said.
      std::fprintf(stderr, "no server: %s (%s)\n", port.error().what().c_str(), redis.conn().last_error().c_str());
      loop.stop();
      co_return;
    }
    const auto hits = co_await redis.incr("sentinel-example:hits");
    std::printf("connected to port %s, hits = %lld\n", port->size() == 2 ? (*port)[1].c_str() : "?",
                hits ? static_cast<long long>(*hits) : -1LL);
    status = hits ? 0 : 1;
    loop.stop();
  };
  work();
  loop.run();
  return status;
}
