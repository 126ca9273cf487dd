// SPDX-License-Identifier: MIT
// Web sessions: a visitor's anonymous session rotated to a new id on login, sessions on two devices,
// a read on each request (which keeps an active session alive), a field update, and "log out
// everywhere".
// Usage: patterns_sessions [redis://host:port | unix:///path]
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/url.hpp"
#include "patterns/script.hpp"
#include "patterns/session_store.hpp"

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
  // Idle sessions end after 30 minutes; none lives more than a day however active.
  patterns::session_store sessions(redis, {.idle_timeout = 30min, .max_lifetime = 24h});
  const std::string user = "user-" + patterns::random_hex(4);  // a fresh user per run
  int status = 1;
  auto work = [&]() -> client::detached {
    // A visitor shops on the laptop before logging in: an anonymous session. Logging in rotates it
    // to a new id for the user (the cart moves with it); the anonymous id, which someone may have
    // planted or seen, stops working (session fixation).
    const patterns::session_fields on_laptop = {{"device", "laptop"}, {"cart", "0"}};
    const auto visitor = co_await sessions.create("", on_laptop);
    if (!visitor) {
      std::fprintf(stderr, "create failed: %s\n", visitor.error().what().c_str());
      loop.stop();
      co_return;
    }
    const auto laptop = co_await sessions.rotate(*visitor, user);  // the new id for the cookie
    const patterns::session_fields on_phone = {{"device", "phone"}};
    const auto phone = co_await sessions.create(user, on_phone);
    if (!laptop || !*laptop || !phone) {
      std::fprintf(stderr, "rotate or create failed\n");
      loop.stop();
      co_return;
    }
    const std::string& laptop_id = **laptop;
    const auto old = co_await sessions.get(*visitor);
    std::printf("logged in: session id %.12s... (%zu hex digits); the visitor's id is %s\n", laptop_id.c_str(),
                laptop_id.size(), old && !*old ? "no session now" : "still a session?");
    // A request with the laptop's cookie: read the session, then change a field.
    if (const auto s = co_await sessions.get(laptop_id); s && *s) {
      std::printf("request from %s on %s\n", (*s)->user.c_str(), (*s)->fields.at("device").c_str());
    }
    (void)co_await sessions.set(laptop_id, "cart", "2");
    // A forged cookie is no session (and costs no round trip).
    const auto forged = co_await sessions.get("0123456789abcdef-not-a-session");
    std::printf("forged cookie: %s\n", forged && !*forged ? "no session" : "?");
    // "Log out everywhere" after a password change.
    const auto ended = co_await sessions.destroy_all(user);
    const auto after = co_await sessions.get(*phone);
    std::printf("logged out of %lld sessions; the phone's is %s\n", ended ? static_cast<long long>(*ended) : -1LL,
                after && !*after ? "gone" : "still there?");
    status = ended && *ended == 2 && after && !*after ? 0 : 1;
    loop.stop();
  };
  work();
  loop.run();
  return status;
}
