// SPDX-License-Identifier: MIT
// A loader behind the cache: the first read loads (from a pretend database), later reads hit,
// concurrent readers share one load, a write goes through, and a tag invalidates a group of keys.
// Usage: patterns_cache [redis://host:port | unix:///path]
#include "client/client.hpp"
#include "client/url.hpp"
#include "patterns/cache.hpp"

#include <chrono>
#include <cstdio>
#include <string>

using namespace redring;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  client::options opts;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  net::loop loop;
  client::client redis(loop, opts);
  patterns::cache users(redis, {.prefix = "example:", .space = "users", .ttl = 30s, .stale_ttl = 10s});
  int queries = 0;
  // The source of truth: 5 ms per query; user 0 does not exist.
  auto query_user = [&](int id) -> patterns::loader {
    return [&loop, &queries, id]() -> patterns::task<patterns::load_result> {
      ++queries;
      co_await patterns::sleep_for(loop, 5ms);
      if (id == 0) co_return patterns::load_result(std::nullopt);
      co_return patterns::load_result(std::optional<std::string>("user #" + std::to_string(id)));
    };
  };
  const char* names[] = {"hit", "stale", "loaded", "waited", "degraded"};
  int status = 1, finished = 0;
  auto reader = [&]() -> client::detached {
    const auto r = co_await users.get_or_load("42", query_user(42));
    if (r) std::printf("reader: %s (%s)\n", r->value ? r->value->c_str() : "(none)", names[static_cast<int>(r->source)]);
    ++finished;
  };
  auto main_flow = [&]() -> client::detached {
    (void)co_await users.invalidate("42");
    (void)co_await users.invalidate("0");
    for (int i = 0; i < 3; ++i) reader();                 // three concurrent readers, one query
    while (finished < 3) co_await patterns::sleep_for(loop, 1ms);
    std::printf("queries after 3 concurrent reads: %d\n", queries);
    const auto missing = co_await users.get_or_load("0", query_user(0));
    std::printf("user 0: %s\n", missing && !missing->value ? "does not exist (cached negatively)" : "?");
    const std::vector<std::string> team = {"team:7"};
    (void)co_await users.set("43", "user #43 (written through)", team);
    (void)co_await users.set("44", "user #44 (written through)", team);
    const auto removed = co_await users.invalidate_tag("team:7");
    std::printf("invalidated %lld keys of tag team:7\n", removed ? static_cast<long long>(*removed) : -1LL);
    status = queries == 2 && removed && *removed == 2 ? 0 : 1;
    loop.stop();
  };
  main_flow();
  loop.run();
  return status;
}
