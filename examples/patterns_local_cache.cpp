// SPDX-License-Identifier: MIT
// Client-side caching: a configuration value read through a local cache is answered in the process
// after the first read, until another client changes it and the server's invalidation arrives.
// Usage: patterns_local_cache [redis://host:port | unix:///path]   (Redis 6 or later: RESP3)
#include "client/client.hpp"
#include "client/url.hpp"
#include "patterns/local_cache.hpp"
#include "patterns/script.hpp"
#include "resp/convert.hpp"

#include <chrono>
#include <cstdio>
#include <map>
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
  client::options tracked = opts;
  tracked.tracking.enabled = true;  // CLIENT TRACKING ON on every connection (or ?tracking=yes)
  client::client redis(loop, tracked);
  client::client other(loop, opts);  // another application instance, writing
  patterns::local_cache cache(redis, {.max_entries = 1000});
  const std::string key = "config:" + patterns::random_hex(4) + ":feature-x";
  int status = 1;

  auto flow = [&]() -> client::detached {
    auto show = [&](const char* when, const resp::result<std::optional<std::string>>& v) {
      if (!v) std::printf("%s: error %s\n", when, v.error().what().c_str());
      else std::printf("%s: %s\n", when, *v ? (*v)->c_str() : "(none)");
    };
    if (auto ok = co_await cache.set(key, "off"); !ok) {
      std::printf("cannot use the cache: %s\n", ok.error().what().c_str());
      loop.stop();
      co_return;
    }
    show("first read (from the server)", co_await cache.get(key));
    show("second read (in the process)", co_await cache.get(key));
    (void)co_await other.set(key, "on");  // someone else flips the flag
    // The server's invalidation arrives on the reading connection; until then the old value stands.
    while (cache.holds(key)) co_await patterns::sleep_for(loop, 1ms);
    show("after another client's write", co_await cache.get(key));
    const auto s = cache.stats();
    std::printf("hits %llu, misses %llu, invalidations %llu\n", static_cast<unsigned long long>(s.hits),
                static_cast<unsigned long long>(s.misses), static_cast<unsigned long long>(s.invalidations));
    // Any read-only command about one key: the reply (a resp::value) is kept under its key.
    const std::string profile = key + ":profile";
    (void)co_await other.command<std::int64_t>("HSET", profile, "name", "ada", "lang", "c++");
    for (int i = 0; i < 2; ++i) {
      auto fields = co_await cache.read("HGETALL", profile);
      auto map = fields ? resp::convert<std::map<std::string, std::string>>(*fields)
                        : resp::result<std::map<std::string, std::string>>(fields.error());
      if (!map) {
        std::printf("HGETALL: error %s\n", map.error().what().c_str());
        break;
      }
      std::printf("HGETALL %s (%s): name=%s lang=%s\n", profile.c_str(), i == 0 ? "from the server" : "in the process",
                  (*map)["name"].c_str(), (*map)["lang"].c_str());
    }
    // Several keys at once: held ones from the process, the others read together.
    const std::string other_key = key + ":other";
    const std::string_view keys[] = {key, other_key};
    if (auto both = co_await cache.mget(keys)) {
      std::printf("MGET: %s, %s\n", (*both)[0] ? (*both)[0]->c_str() : "(none)", (*both)[1] ? (*both)[1]->c_str() : "(none)");
    }
    const auto after = cache.stats();
    (void)co_await other.command<std::int64_t>("DEL", key, profile);
    status = s.hits == 1 && s.misses == 2 && s.invalidations == 1 && after.hits == 3 ? 0 : 1;
    loop.stop();
  };
  flow();
  loop.run();
  return status;
}
