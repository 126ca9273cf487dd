// SPDX-License-Identifier: MIT
// The blocking facade: no coroutines, no loop to run. Safe to call from many threads.
#include "client/sync_client.hpp"

#include <cstdio>
#include <optional>
#include <system_error>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  if (argc > 1 && client::parse_url(argv[1], opts)) return 2;
  opts.command_timeout = std::chrono::milliseconds(1000);
  std::optional<client::sync_client> holder;
  try {
    holder.emplace(opts);
  } catch (const std::system_error& e) {  // the one throw: no io_uring here (a container's seccomp, say)
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  client::sync_client& redis = *holder;
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
