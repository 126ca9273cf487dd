// SPDX-License-Identifier: MIT
// The blocking facade: no coroutines, no loop to run. Safe to call from many threads.
#include "client/sync_client.hpp"

#include <cstdio>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  if (argc > 1 && client::parse_url(argv[1], opts)) return 2;
  opts.command_timeout = std::chrono::milliseconds(1000);
  client::sync_client redis(opts);
  if (auto r = redis.set("k", "v"); !r) {
    std::fprintf(stderr, "SET: %s (%s)\n", r.error().what().c_str(), redis.async().conn().last_error().c_str());
    return 1;
  }
  const auto v = redis.get("k");
  std::printf("k = %s\n", v && *v ? (*v)->c_str() : "(nil)");
  const auto members = redis.command<std::vector<std::string>>("KEYS", "*");
  std::printf("%zu keys\n", members ? members->size() : 0);
  return 0;
}
