// SPDX-License-Identifier: MIT
// Our own client as redring-fuzz's client under test: connects to the Unix socket in argv[1] and runs
// a spread of typed commands through the blocking facade. Every reply, however hostile, must end in a
// value or a clear error: the program prints each outcome and exits 0; a crash or a hang is a bug.
#include "client/sync_client.hpp"

#include <cstdio>
#include <string>

namespace {

template <class Result>
void show(const char* what, const Result& r) {
  if (r) std::printf("%s: ok\n", what);
  else std::printf("%s: %s\n", what, r.error().what().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  redring::client::options opts;
  opts.unix_path = argv[1];
  opts.connect_timeout = std::chrono::milliseconds(1000);
  opts.command_timeout = std::chrono::milliseconds(1000);
  opts.reconnect.enabled = false;
  redring::client::sync_client redis(opts);
  show("PING", redis.command<std::string>("PING"));
  show("GET", redis.get("k"));
  show("SET", redis.set("k", "v"));
  show("INCR", redis.command<std::int64_t>("INCR", "n"));
  show("HGETALL", redis.command<std::vector<std::pair<std::string, std::string>>>("HGETALL", "h"));
  show("LRANGE", redis.command<std::vector<std::string>>("LRANGE", "l", 0, -1));
  show("VALUE", redis.command<redring::resp::value>("X"));
  show("DOUBLE", redis.command<double>("ZSCORE", "z", "m"));
  return 0;
}
