// SPDX-License-Identifier: MIT
// A loader behind the cache: user records (a struct, stored through a codec) load from a pretend
// database on the first read, later reads hit, concurrent readers share one load, a write goes
// through, and a tag invalidates a group of keys.
// Usage: patterns_cache [redis://host:port | unix:///path]
#include "client/client.hpp"
#include "client/url.hpp"
#include "patterns/typed_cache.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>

using namespace redring;
using namespace std::chrono_literals;

namespace {

struct user {
  int id = 0;
  std::string name;
};

// How a user is stored in Redis: "id|name". Bytes that are not that (corrupt, or written by an older
// version of the program) are an error, which the cache reports and answers by loading again.
struct user_codec {
  std::string encode(const user& u) const {
    std::string out = std::to_string(u.id);
    out.append("|").append(u.name);
    return out;
  }
  resp::result<user> decode(std::string_view bytes) const {
    const auto bar = bytes.find('|');
    user u;
    if (bar == std::string_view::npos || std::from_chars(bytes.data(), bytes.data() + bar, u.id).ptr != bytes.data() + bar)
      return resp::error{std::make_error_code(std::errc::invalid_argument), "not a user record"};
    u.name = bytes.substr(bar + 1);
    return u;
  }
};

using user_cache = patterns::typed_cache<user, user_codec>;

}  // namespace

int main(int argc, char** argv) {
  client::options opts;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  net::loop loop;
  client::client redis(loop, opts);
  user_cache users(redis, {.prefix = "example:", .space = "users", .ttl = 30s, .stale_ttl = 10s});
  int queries = 0;
  // The source of truth: 5 ms per query; user 0 does not exist.
  auto query_user = [&](int id) -> user_cache::loader {
    return [&loop, &queries, id]() -> patterns::task<user_cache::load_result> {
      ++queries;
      co_await patterns::sleep_for(loop, 5ms);
      if (id == 0) co_return user_cache::load_result(std::nullopt);
      co_return user_cache::load_result(user{id, "user #" + std::to_string(id)});
    };
  };
  const char* names[] = {"hit", "stale", "loaded", "waited", "degraded"};
  int status = 1, finished = 0;
  auto reader = [&]() -> client::detached {
    const auto r = co_await users.get_or_load("42", query_user(42));
    if (r) std::printf("reader: %s (%s)\n", r->value ? r->value->name.c_str() : "(none)", names[static_cast<int>(r->source)]);
    ++finished;
  };
  auto main_flow = [&]() -> client::detached {
    (void)co_await users.invalidate("42");
    (void)co_await users.invalidate("0");
    (void)co_await users.invalidate("45");
    for (int i = 0; i < 3; ++i) reader();                 // three concurrent readers, one query
    while (finished < 3) co_await patterns::sleep_for(loop, 1ms);
    std::printf("queries after 3 concurrent reads: %d\n", queries);
    const auto missing = co_await users.get_or_load("0", query_user(0));
    std::printf("user 0: %s\n", missing && !missing->value ? "does not exist (cached negatively)" : "?");
    const std::vector<std::string> team = {"team:7"};
    const user u43{43, "user #43 (written through)"}, u44{44, "user #44 (written through)"};
    (void)co_await users.set("43", u43, team);
    (void)co_await users.set("44", u44, team);
    const auto tagged = co_await users.get_or_load("45", query_user(45), team);  // a loaded value, tagged
    std::printf("user 45: %s (%s)\n", tagged && tagged->value ? tagged->value->name.c_str() : "?",
                tagged ? names[static_cast<int>(tagged->source)] : "error");
    const auto removed = co_await users.invalidate_tag("team:7");
    std::printf("invalidated %lld keys of tag team:7\n", removed ? static_cast<long long>(*removed) : -1LL);
    status = queries == 3 && removed && *removed == 3 ? 0 : 1;
    loop.stop();
  };
  main_flow();
  loop.run();
  return status;
}
