// SPDX-License-Identifier: MIT
// Coroutines on an io_uring loop: SET, GET, INCR, an error reply, and a command without a helper.
// Usage: get_set [redis://host:port | unix:///path]   (default: REDIS_URL, else 127.0.0.1:6379)
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/url.hpp"

#include <cstdio>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  net::loop loop;
  client::client redis(loop, opts);
  int status = 1;
  // A named closure: its coroutine reads `redis` and `status` through it, so it must outlive it.
  auto work = [&]() -> client::detached {
    if (auto ok = co_await redis.set("greeting", "hello"); !ok) {
      std::fprintf(stderr, "SET failed: %s\n", ok.error().what().c_str());
      loop.stop();
      co_return;
    }
    const auto value = co_await redis.get("greeting");  // result<std::optional<std::string>>
    std::printf("greeting = %s\n", value && *value ? (*value)->c_str() : "(nil)");
    const auto n = co_await redis.incr("visits");
    std::printf("visits = %lld\n", n ? static_cast<long long>(*n) : -1LL);
    const auto wrong = co_await redis.incr("greeting");  // a server error is a value
    if (!wrong) std::printf("INCR greeting: %s (code word %s)\n", wrong.error().message.c_str(),
                            std::string(wrong.error().code_word()).c_str());
    const auto len = co_await redis.command<std::int64_t>("STRLEN", "greeting");  // any command
    std::printf("STRLEN = %lld\n", len ? static_cast<long long>(*len) : -1LL);
    // A name known at compile time is encoded from constants, as the typed helpers' are.
    const auto type = co_await redis.command<std::string>(resp::lit<"TYPE">, "greeting");
    std::printf("TYPE = %s\n", type ? type->c_str() : "?");
    status = 0;
    loop.stop();
  };
  work();
  loop.run();
  return status;
}
